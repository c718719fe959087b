-- Share links (docs/api.md "Sharing a chat"): a read-only snapshot of a chat at an unguessable
-- link. Only the token's SHA-256 is kept; deleting the row revokes the link, deleting the chat too.
CREATE TABLE shares (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  owner_id   TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  title      TEXT NOT NULL,
  -- The messages shared, as JSON: what the chat held when the link was made, nothing later.
  snapshot   TEXT NOT NULL,
  message_count INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX idx_shares_owner ON shares(owner_id, created_at);
CREATE INDEX idx_shares_session ON shares(session_id);
