-- Input a tool asks its user for mid-call (docs/tools.md "Input for a tool": MCP elicitation): the
-- request while it waits, and the user's answer, which the instance running the call reads.
CREATE TABLE tool_inputs (
  id               TEXT PRIMARY KEY,
  session_id       TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  reply_id         TEXT NOT NULL,
  call_id          TEXT NOT NULL,
  owner_instance   TEXT,
  message          TEXT NOT NULL,
  requested_schema TEXT NOT NULL,
  created_at       TEXT NOT NULL,
  expires_at       TEXT NOT NULL,
  -- {"action": "accept" | "decline" | "cancel", "content"?: {…}} once answered.
  answer           TEXT
);
CREATE INDEX idx_tool_inputs_call ON tool_inputs(session_id, call_id);
