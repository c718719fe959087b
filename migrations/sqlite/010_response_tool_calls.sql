-- Function tools on /v1/responses: the function calls a response's model made, as JSON
-- ([{call_id, name, arguments}]); NULL when it made none.
ALTER TABLE responses ADD COLUMN tool_calls TEXT;
