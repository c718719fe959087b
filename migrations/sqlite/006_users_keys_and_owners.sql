-- Access control: users own conversations; API keys and page sign-ins are kept only as SHA-256
-- hashes; an append-only audit log. Sessions made before (or while AUTH is off) belong to the
-- built-in local user, `local`, until an admin adopts them (`npm run admin -- adopt-local USER`).
CREATE TABLE users (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name         TEXT NOT NULL,
  hash         TEXT NOT NULL UNIQUE,
  created_at   TEXT NOT NULL,
  last_used_at TEXT,
  expires_at   TEXT,
  revoked_at   TEXT
);
CREATE INDEX idx_api_keys_user ON api_keys(user_id, created_at);

-- The page's sign-ins: an opaque cookie traded for an API key, ended by logout or by the key's end.
CREATE TABLE web_sessions (
  hash       TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key_id     TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);

CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY,
  at      TEXT NOT NULL,
  user_id TEXT,
  key_id  TEXT,
  address TEXT,
  action  TEXT NOT NULL,
  target  TEXT,
  outcome TEXT NOT NULL
);
CREATE TRIGGER trg_audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER trg_audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;

ALTER TABLE sessions ADD COLUMN owner_id TEXT NOT NULL DEFAULT 'local';

-- Every session list is one owner's.
DROP INDEX idx_sessions_updated_id;
CREATE INDEX idx_sessions_owner_updated ON sessions(owner_id, updated_at DESC, id DESC);
DROP INDEX idx_sessions_created_id;
CREATE INDEX idx_sessions_owner_created ON sessions(owner_id, created_at, id);
