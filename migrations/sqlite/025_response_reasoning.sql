-- Reasoning models on the Responses API (docs/openai.md "Reasoning"): a response's reasoning item
-- (its text, its deltas' lengths and its place among the MCP items), as JSON; NULL when the model
-- did not think.
ALTER TABLE responses ADD COLUMN reasoning TEXT;
