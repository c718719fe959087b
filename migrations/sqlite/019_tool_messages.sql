-- foreign_keys: off
-- Tools (docs/tools.md): a turn may hold the model's tool calls (`tool_calls` on an assistant
-- message) and their results (messages of role `tool`), and a reply may wait for a user's
-- approval. SQLite cannot change a CHECK in place: the table is rebuilt (foreign keys off, so that
-- dropping the old table cascades nowhere), keeping every rowid, which the search index is keyed by.
CREATE TABLE messages_new (
  id            TEXT PRIMARY KEY,
  session_id    TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  role          TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
  content       TEXT NOT NULL,
  model         TEXT,
  tokens_used   INTEGER,
  created_at    TEXT NOT NULL,
  status        TEXT NOT NULL DEFAULT 'complete'
    CHECK (status IN ('complete', 'streaming', 'cancelled', 'error', 'interrupted', 'awaiting_approval')),
  prompt_tokens INTEGER,
  done_reason   TEXT,
  ollama_host   TEXT,
  parent_id     TEXT,
  event_count   INTEGER,
  -- An assistant message's calls, as JSON: [{"call_id", "name", "arguments"}].
  tool_calls    TEXT,
  -- A tool message's call and tool.
  tool_call_id  TEXT,
  tool_name     TEXT
);
INSERT INTO messages_new (rowid, id, session_id, role, content, model, tokens_used, created_at, status, prompt_tokens, done_reason, ollama_host, parent_id, event_count)
  SELECT rowid, id, session_id, role, content, model, tokens_used, created_at, status, prompt_tokens, done_reason, ollama_host, parent_id, event_count FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;

CREATE INDEX idx_messages_session_created ON messages(session_id, created_at);
CREATE INDEX idx_messages_streaming ON messages(status) WHERE status = 'streaming';
CREATE INDEX idx_messages_parent ON messages(parent_id);

-- The triggers of 013 (search) and 014 (branches), as they were.
CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER trg_messages_insert
AFTER INSERT ON messages
BEGIN
  UPDATE sessions SET updated_at = NEW.created_at, message_count = message_count + 1, current_message_id = NEW.id
  WHERE id = NEW.session_id;
END;
CREATE TRIGGER trg_messages_delete
AFTER DELETE ON messages
BEGIN
  UPDATE messages SET parent_id = OLD.parent_id WHERE parent_id = OLD.id;
  UPDATE sessions SET message_count = message_count - 1,
    current_message_id = CASE WHEN current_message_id = OLD.id THEN OLD.parent_id ELSE current_message_id END
  WHERE id = OLD.session_id;
END;

-- A call waiting for its user's approval (policy `ask`), with what resuming its turn needs:
-- it outlives the process that asked.
CREATE TABLE tool_approvals (
  call_id     TEXT PRIMARY KEY,
  session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  reply_id    TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  name        TEXT NOT NULL,
  arguments   TEXT NOT NULL,
  turn        TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  expires_at  TEXT NOT NULL,
  decision    TEXT CHECK (decision IN ('approved', 'denied')),
  decided_at  TEXT
);
CREATE INDEX idx_tool_approvals_reply ON tool_approvals(reply_id);
CREATE INDEX idx_tool_approvals_pending ON tool_approvals(expires_at) WHERE decision IS NULL;
