-- What the contract adds to the seed: the lifecycle of a reply, token accounting, a message count
-- kept by triggers (a session list page costs one query), and indexes for keyset pagination.
ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'
  CHECK (status IN ('complete', 'streaming', 'cancelled', 'error', 'interrupted'));
ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE messages ADD COLUMN done_reason TEXT;

ALTER TABLE sessions ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET message_count = (SELECT count(*) FROM messages WHERE messages.session_id = sessions.id);

-- One UPDATE per inserted message instead of two: the seed's trigger is folded into this one.
DROP TRIGGER trg_messages_touch_session;
CREATE TRIGGER trg_messages_insert
AFTER INSERT ON messages
BEGIN
  UPDATE sessions SET updated_at = NEW.created_at, message_count = message_count + 1 WHERE id = NEW.session_id;
END;

CREATE TRIGGER trg_messages_count_delete
AFTER DELETE ON messages
BEGIN
  UPDATE sessions SET message_count = message_count - 1 WHERE id = OLD.session_id;
END;

-- Messages of a session in order; rowid (insertion order) is part of every index and breaks ties.
DROP INDEX idx_messages_session_id;
CREATE INDEX idx_messages_session_created ON messages(session_id, created_at);

-- Sessions newest first, ties broken by id.
DROP INDEX idx_sessions_updated_at;
CREATE INDEX idx_sessions_updated_id ON sessions(updated_at DESC, id DESC);

-- Start-up recovery finds replies a crash left streaming without scanning every message.
CREATE INDEX idx_messages_streaming ON messages(status) WHERE status = 'streaming';
