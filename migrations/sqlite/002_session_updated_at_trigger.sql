-- Seed schema: a new message makes its session the most recently updated one. The time is the
-- message's own created_at, which the application writes with millisecond precision.
CREATE TRIGGER trg_messages_touch_session
AFTER INSERT ON messages
BEGIN
  UPDATE sessions SET updated_at = NEW.created_at WHERE id = NEW.session_id;
END;
