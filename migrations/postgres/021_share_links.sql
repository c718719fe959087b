-- Share links (docs/api.md "Sharing a chat"): a read-only snapshot of a chat at an unguessable
-- link. Only the token's SHA-256 is kept; deleting the row revokes the link, deleting the chat too.
CREATE TABLE shares (
  id         text PRIMARY KEY,
  token_hash text NOT NULL UNIQUE,
  owner_id   text NOT NULL,
  session_id text NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  title      text NOT NULL,
  -- The messages shared: what the chat held when the link was made, nothing later.
  snapshot   jsonb NOT NULL,
  message_count integer NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX idx_shares_owner ON shares (owner_id, created_at);
CREATE INDEX idx_shares_session ON shares (session_id);
