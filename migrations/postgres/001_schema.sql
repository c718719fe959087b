-- The whole schema on PostgreSQL, as SQLite's migrations 001-011 leave it, in PostgreSQL's types:
-- timestamptz for times, jsonb for what is read whole, json where the text must come back exactly
-- as written (a response's input and parameters), boolean for flags, and an identity column
-- `seq` where SQLite breaks ties by rowid (insertion order).

CREATE TABLE sessions (
  id            text PRIMARY KEY,
  owner_id      text NOT NULL DEFAULT 'local',
  title         text NOT NULL DEFAULT 'New Chat',
  created_at    timestamptz NOT NULL,
  updated_at    timestamptz NOT NULL,
  message_count integer NOT NULL DEFAULT 0,
  metadata      jsonb
);
CREATE INDEX idx_sessions_owner_updated ON sessions (owner_id, updated_at DESC, id DESC);
CREATE INDEX idx_sessions_owner_created ON sessions (owner_id, created_at, id);

CREATE TABLE messages (
  seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id            text PRIMARY KEY,
  session_id    text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  role          text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content       text NOT NULL,
  model         text,
  status        text NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'streaming', 'cancelled', 'error', 'interrupted')),
  tokens_used   integer,
  prompt_tokens integer,
  done_reason   text,
  ollama_host   text,
  created_at    timestamptz NOT NULL
);
CREATE INDEX idx_messages_session_created ON messages (session_id, created_at, seq);
CREATE INDEX idx_messages_streaming ON messages (status) WHERE status = 'streaming';

-- A session's message_count and updated_at follow its messages, as SQLite's triggers keep them.
CREATE FUNCTION messages_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE sessions SET updated_at = NEW.created_at, message_count = message_count + 1 WHERE id = NEW.session_id;
  ELSE
    UPDATE sessions SET message_count = message_count - 1 WHERE id = OLD.session_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER trg_messages_counted AFTER INSERT OR DELETE ON messages FOR EACH ROW EXECUTE FUNCTION messages_counted();

CREATE TABLE users (
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id         text PRIMARY KEY,
  name       text NOT NULL,
  role       text NOT NULL CHECK (role IN ('admin', 'user')),
  created_at timestamptz NOT NULL
);
-- Names are unique whatever their case, as SQLite's COLLATE NOCASE made them.
CREATE UNIQUE INDEX idx_users_name ON users (lower(name));

CREATE TABLE api_keys (
  seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id           text PRIMARY KEY,
  user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name         text NOT NULL,
  hash         text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX idx_api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE web_sessions (
  hash       text PRIMARY KEY,
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key_id     text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);

CREATE TABLE audit_log (
  id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at      timestamptz NOT NULL,
  user_id text,
  key_id  text,
  address text,
  action  text NOT NULL,
  target  text,
  outcome text NOT NULL
);

-- Append-only, for every role that can write to it (TRUNCATE included).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER trg_audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER trg_audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE responses (
  id                   text PRIMARY KEY,
  owner_id             text NOT NULL,
  session_id           text,
  previous_response_id text,
  model                text NOT NULL,
  status               text NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed', 'incomplete', 'failed', 'cancelled')),
  background           boolean NOT NULL DEFAULT false,
  output_text          text NOT NULL DEFAULT '',
  deltas               jsonb NOT NULL DEFAULT '[]',
  tool_calls           json,
  usage                jsonb,
  incomplete_reason    text,
  error                jsonb,
  created_at           timestamptz NOT NULL,
  completed_at         timestamptz
);
CREATE INDEX idx_responses_running ON responses (status) WHERE status IN ('queued', 'in_progress');

-- What a response was asked never changes, and can be as large as a request body.
CREATE TABLE response_requests (
  response_id  text PRIMARY KEY REFERENCES responses (id) ON DELETE CASCADE,
  instructions text,
  input        json NOT NULL,
  params       json NOT NULL
);
