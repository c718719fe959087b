-- OpenAI's Responses API, stateful: each stored response with its input items and output text.
-- `deltas` keeps the lengths of the text deltas it streamed, so a replay (after a restart too)
-- carries the same events with the same sequence numbers. A response made in a conversation
-- also writes its messages into that session (session_id).
CREATE TABLE responses (
  id                   TEXT PRIMARY KEY,
  owner_id             TEXT NOT NULL,
  session_id           TEXT,
  previous_response_id TEXT,
  model                TEXT NOT NULL,
  instructions         TEXT,
  status               TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled')),
  background           INTEGER NOT NULL DEFAULT 0,
  input                TEXT NOT NULL,
  output_text          TEXT NOT NULL DEFAULT '',
  deltas               TEXT NOT NULL DEFAULT '[]',
  usage                TEXT,
  incomplete_reason    TEXT,
  error                TEXT,
  params               TEXT NOT NULL,
  created_at           TEXT NOT NULL,
  completed_at         TEXT
);
CREATE INDEX idx_responses_running ON responses(status) WHERE status IN ('queued', 'in_progress');

-- A conversation (OpenAI's) is a session; its metadata is kept here.
ALTER TABLE sessions ADD COLUMN metadata TEXT;
