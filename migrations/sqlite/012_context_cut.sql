-- Long conversations: where the history sent to the model begins (the first message after the
-- system prompt; NULL: from the start), and the summary of what came before it, if one was made.
ALTER TABLE sessions ADD COLUMN context_cut_message_id TEXT;
ALTER TABLE sessions ADD COLUMN context_summary TEXT;
