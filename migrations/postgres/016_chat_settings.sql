-- A chat keeps its settings (docs/api.md "Chat settings"): the model, options and think its turns
-- use unless they send their own. The system prompt stays the session's system message.
ALTER TABLE sessions ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
-- A chat made before keeps the model that last answered it, as the page showed it.
UPDATE sessions SET settings = jsonb_build_object('model', last.model)
FROM (SELECT DISTINCT ON (session_id) session_id, model FROM messages
      WHERE role = 'assistant' AND model IS NOT NULL ORDER BY session_id, created_at DESC, seq DESC) AS last
WHERE last.session_id = sessions.id;
-- A session's system message, read with the session and changed by PATCH, without a scan of its messages.
CREATE INDEX idx_messages_system ON messages (session_id) WHERE role = 'system';
-- Each reply's speed, from Ollama's eval_count and eval_duration.
ALTER TABLE messages ADD COLUMN tokens_per_second real;
