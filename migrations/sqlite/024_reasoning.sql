-- Reasoning models (docs/api.md "Reasoning"): a reply's thinking is kept beside its text, not in
-- it (never sent back to the model in later turns, not searched), with how long it took.
ALTER TABLE messages ADD COLUMN thinking TEXT;
ALTER TABLE messages ADD COLUMN thinking_ms INTEGER;
