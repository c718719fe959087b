-- Images (docs/images.md): stored once, apart from the rows of messages, so that listing and
-- sending text stays as fast as before. An image belongs to a message (removed with it, and so
-- with its session) or to a stored response's input (removed with the response).
CREATE TABLE attachments (
  id          text PRIMARY KEY,
  message_id  text REFERENCES messages (id) ON DELETE CASCADE,
  response_id text REFERENCES responses (id) ON DELETE CASCADE,
  position    integer NOT NULL,
  media_type  text NOT NULL,
  width       integer NOT NULL,
  height      integer NOT NULL,
  size        integer NOT NULL,
  data        bytea NOT NULL,
  created_at  timestamptz NOT NULL,
  CHECK ((message_id IS NULL) <> (response_id IS NULL))
);
CREATE INDEX attachments_by_message ON attachments (message_id, position) WHERE message_id IS NOT NULL;
CREATE INDEX attachments_by_response ON attachments (response_id, position) WHERE response_id IS NOT NULL;
