-- Imports that grow (docs/api.md "Export and import"): which message of the file each imported message
-- is, so that importing a later export of the same conversation adds only the messages it lacks,
-- in their place in the tree. The row goes with its message.
CREATE TABLE imported_messages (
  message_id        TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  session_id        TEXT NOT NULL,
  source_message_id TEXT NOT NULL,
  UNIQUE (session_id, source_message_id)
);
