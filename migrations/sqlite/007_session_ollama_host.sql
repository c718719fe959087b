-- The Ollama host a conversation last ran on: its next turn goes there while that host is
-- healthy and has the model, since Ollama reuses the KV cache of the shared prefix only there.
ALTER TABLE sessions ADD COLUMN ollama_host TEXT;
