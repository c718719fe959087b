-- Safe retries (docs/api.md "Safe retries"): an Idempotency-Key per user, the request it came with (a
-- fingerprint of its route and body), and what that request made: a chat's reply (with its
-- session and the start event's context), or the answer of a route that answers at once. A claim without an outcome is a request still running.
CREATE TABLE idempotency_keys (
  owner_id    TEXT NOT NULL,
  key         TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  session_id  TEXT,
  message_id  TEXT,
  status      INTEGER,
  answer      TEXT,
  event_count INTEGER,
  PRIMARY KEY (owner_id, key)
);
CREATE INDEX idx_idempotency_created ON idempotency_keys(created_at);
