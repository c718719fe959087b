-- Input a tool asks its user for mid-call (docs/tools.md "Input for a tool": MCP elicitation): the
-- request while it waits, and the user's answer, which the instance running the call reads.
CREATE TABLE tool_inputs (
  id               text PRIMARY KEY,
  session_id       text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  reply_id         text NOT NULL,
  call_id          text NOT NULL,
  owner_instance   text,
  message          text NOT NULL,
  requested_schema jsonb NOT NULL,
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  -- {"action": "accept" | "decline" | "cancel", "content"?: {…}} once answered.
  answer           jsonb
);
CREATE INDEX idx_tool_inputs_call ON tool_inputs (session_id, call_id);
