-- Tools (docs/tools.md): a turn may hold the model's tool calls (`tool_calls` on an assistant
-- message) and their results (messages of role `tool`), and a reply may wait for a user's approval.
ALTER TABLE messages DROP CONSTRAINT messages_role_check,
  ADD CONSTRAINT messages_role_check CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  DROP CONSTRAINT messages_status_check,
  ADD CONSTRAINT messages_status_check
    CHECK (status IN ('complete', 'streaming', 'cancelled', 'error', 'interrupted', 'awaiting_approval')),
  -- An assistant message's calls, as JSON: [{"call_id", "name", "arguments"}].
  ADD COLUMN tool_calls text,
  -- A tool message's call and tool.
  ADD COLUMN tool_call_id text,
  ADD COLUMN tool_name text;

-- A call waiting for its user's approval (policy `ask`), with what resuming its turn needs:
-- it outlives the instance that asked, and any instance may take the answer.
CREATE TABLE tool_approvals (
  call_id     text PRIMARY KEY,
  session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  reply_id    text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  name        text NOT NULL,
  arguments   text NOT NULL,
  turn        text NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  decision    text CHECK (decision IN ('approved', 'denied')),
  decided_at  timestamptz
);
CREATE INDEX idx_tool_approvals_reply ON tool_approvals (reply_id);
CREATE INDEX idx_tool_approvals_pending ON tool_approvals (expires_at) WHERE decision IS NULL;
