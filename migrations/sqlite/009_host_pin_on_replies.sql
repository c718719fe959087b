-- The host a conversation last ran on is kept on its replies, written by the reply's final UPDATE,
-- instead of a separate UPDATE of the session on every new conversation's first turn.
ALTER TABLE messages ADD COLUMN ollama_host TEXT;
UPDATE messages SET ollama_host = (SELECT s.ollama_host FROM sessions s WHERE s.id = messages.session_id)
 WHERE rowid IN (SELECT max(rowid) FROM messages WHERE role = 'assistant' GROUP BY session_id);
ALTER TABLE sessions DROP COLUMN ollama_host;
