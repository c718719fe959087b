-- Documents (docs/documents.md): uploaded files, their text in chunks with an embedding each, and
-- collections of files. A file's bytes sit in a table of their own, so listing files never reads them.
CREATE TABLE files (
  id            text PRIMARY KEY,
  owner_id      text NOT NULL,
  filename      text NOT NULL,
  kind          text NOT NULL,
  media_type    text NOT NULL,
  bytes         bigint NOT NULL,
  purpose       text NOT NULL,
  status        text NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
  pages         integer,
  chunks_total  integer,
  chunks_done   integer NOT NULL DEFAULT 0,
  -- The model the chunks' vectors are made with (EMBED_MODEL when it was ingested).
  embed_model   text NOT NULL,
  last_error    text,
  attempts      integer NOT NULL DEFAULT 0,
  -- Ingestion's lease: which instance works on the file, until when (a dead one's file is taken again).
  claimed_by    text,
  claimed_until timestamptz,
  created_at    timestamptz NOT NULL,
  completed_at  timestamptz
);
CREATE INDEX files_by_owner ON files (owner_id, created_at DESC, id DESC);
CREATE INDEX files_to_ingest ON files (created_at) WHERE status = 'in_progress';
CREATE TABLE file_data (
  file_id text PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
  data    bytea NOT NULL
);
-- No foreign key: a deleted file's chunks are removed in batches afterwards, and are never read,
-- since every read joins files.
CREATE TABLE file_chunks (
  id          bigserial PRIMARY KEY,
  file_id     text NOT NULL,
  position    integer NOT NULL,
  page        integer,
  heading     text,
  content     text NOT NULL,
  -- float32, little-endian; null until embedded.
  embedding   bytea,
  embed_model text,
  search      tsvector GENERATED ALWAYS AS (search_vector(content)) STORED,
  UNIQUE (file_id, position)
);
CREATE INDEX file_chunks_search ON file_chunks USING gin (search);
CREATE TABLE collections (
  id         text PRIMARY KEY,
  owner_id   text NOT NULL,
  name       text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX collections_by_owner ON collections (owner_id, created_at DESC, id DESC);
CREATE TABLE collection_files (
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  file_id       text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
  added_at      timestamptz NOT NULL,
  PRIMARY KEY (collection_id, file_id)
);
CREATE INDEX collection_files_by_file ON collection_files (file_id);
-- The sources a reply was given (documents' chunks).
ALTER TABLE messages ADD COLUMN sources jsonb;
