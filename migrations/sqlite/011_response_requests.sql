-- What a response was asked (its input items, instructions and parameters) never changes, and
-- can be as large as a request body: it moves to a table of its own, so that the updates of a
-- running response (start, checkpoints, end) do not rewrite it each time.
CREATE TABLE response_requests (
  response_id  TEXT PRIMARY KEY REFERENCES responses(id) ON DELETE CASCADE,
  instructions TEXT,
  input        TEXT NOT NULL,
  params       TEXT NOT NULL
);
INSERT INTO response_requests (response_id, instructions, input, params) SELECT id, instructions, input, params FROM responses;
ALTER TABLE responses DROP COLUMN instructions;
ALTER TABLE responses DROP COLUMN input;
ALTER TABLE responses DROP COLUMN params;
