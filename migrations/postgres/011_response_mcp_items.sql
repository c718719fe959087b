-- The `mcp` tool type on /v1/responses (docs/tools.md): a response's MCP output items
-- (mcp_list_tools, mcp_call, mcp_approval_request), as JSON.
ALTER TABLE responses ADD COLUMN mcp_items json;
