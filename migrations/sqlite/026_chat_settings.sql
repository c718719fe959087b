-- A chat keeps its settings (docs/api.md "Chat settings"): the model, options and think its turns
-- use unless they send their own, as JSON. The system prompt stays the session's system message.
ALTER TABLE sessions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
-- A chat made before keeps the model that last answered it, as the page showed it.
UPDATE sessions SET settings = json_object('model', (
  SELECT model FROM messages WHERE messages.session_id = sessions.id AND role = 'assistant' AND model IS NOT NULL
  ORDER BY created_at DESC, rowid DESC LIMIT 1))
WHERE EXISTS (SELECT 1 FROM messages WHERE messages.session_id = sessions.id AND role = 'assistant' AND model IS NOT NULL);
-- A session's system message, read with the session and changed by PATCH, without a scan of its messages.
CREATE INDEX idx_messages_system ON messages(session_id) WHERE role = 'system';
-- Each reply's speed, from Ollama's eval_count and eval_duration.
ALTER TABLE messages ADD COLUMN tokens_per_second REAL;
