-- Branches (docs/api.md "Branches"): messages form a tree. Each message has its predecessor
-- (`parent_id`, NULL for a first message); a session has an active leaf, and the active path runs
-- from the first message to it. Edits and regenerations add siblings; only the active path is sent.
ALTER TABLE messages ADD COLUMN parent_id text;
ALTER TABLE sessions ADD COLUMN current_message_id text;

-- Existing conversations become one branch: each message follows the one before it.
UPDATE messages SET parent_id = chain.previous
FROM (SELECT id, lag(id) OVER (PARTITION BY session_id ORDER BY created_at, seq) AS previous FROM messages) AS chain
WHERE messages.id = chain.id;
UPDATE sessions SET current_message_id =
  (SELECT id FROM messages WHERE session_id = sessions.id ORDER BY created_at DESC, seq DESC LIMIT 1);

CREATE INDEX idx_messages_parent ON messages (parent_id);

-- A new message is the session's active leaf (a turn, an edit and a regeneration alike); a removed
-- one (a discarded reply, a deleted conversation item) leaves no hole: its children follow its
-- parent, and a path that ended at it ends at its parent.
CREATE OR REPLACE FUNCTION messages_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE sessions SET updated_at = NEW.created_at, message_count = message_count + 1, current_message_id = NEW.id
    WHERE id = NEW.session_id;
  ELSE
    UPDATE messages SET parent_id = OLD.parent_id WHERE parent_id = OLD.id;
    UPDATE sessions SET message_count = message_count - 1,
      current_message_id = CASE WHEN current_message_id = OLD.id THEN OLD.parent_id ELSE current_message_id END
    WHERE id = OLD.session_id;
  END IF;
  RETURN NULL;
END
$$;
