-- Documents (docs/documents.md): uploaded files, their text in chunks with an embedding each, and
-- collections of files. A file's bytes sit in a table of their own, so listing files never reads them.
CREATE TABLE files (
  id            TEXT PRIMARY KEY,
  owner_id      TEXT NOT NULL,
  filename      TEXT NOT NULL,
  kind          TEXT NOT NULL,
  media_type    TEXT NOT NULL,
  bytes         INTEGER NOT NULL,
  purpose       TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
  pages         INTEGER,
  chunks_total  INTEGER,
  chunks_done   INTEGER NOT NULL DEFAULT 0,
  -- The model the chunks' vectors are made with (EMBED_MODEL when it was ingested).
  embed_model   TEXT NOT NULL,
  last_error    TEXT,
  attempts      INTEGER NOT NULL DEFAULT 0,
  -- Ingestion's lease: who works on the file, until when (a dead worker's file is taken again).
  claimed_by    TEXT,
  claimed_until TEXT,
  created_at    TEXT NOT NULL,
  completed_at  TEXT
);
CREATE INDEX files_by_owner ON files (owner_id, created_at DESC, id DESC);
CREATE INDEX files_to_ingest ON files (created_at) WHERE status = 'in_progress';
CREATE TABLE file_data (
  file_id TEXT PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
  data    BLOB NOT NULL
);
-- No foreign key: a deleted file's chunks are removed in batches afterwards (a file of 100,000
-- chunks in one statement would hold the server), and are never read, since every read joins files.
CREATE TABLE file_chunks (
  id          INTEGER PRIMARY KEY,
  file_id     TEXT NOT NULL,
  position    INTEGER NOT NULL,
  page        INTEGER,
  heading     TEXT,
  content     TEXT NOT NULL,
  -- float32, little-endian; null until embedded.
  embedding   BLOB,
  embed_model TEXT,
  UNIQUE (file_id, position)
);
CREATE VIRTUAL TABLE file_chunks_fts USING fts5(content, content='file_chunks', content_rowid='id',
  tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER trg_file_chunks_fts_insert AFTER INSERT ON file_chunks BEGIN
  INSERT INTO file_chunks_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER trg_file_chunks_fts_delete AFTER DELETE ON file_chunks BEGIN
  INSERT INTO file_chunks_fts (file_chunks_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;
CREATE TABLE collections (
  id         TEXT PRIMARY KEY,
  owner_id   TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX collections_by_owner ON collections (owner_id, created_at DESC, id DESC);
CREATE TABLE collection_files (
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  file_id       TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
  added_at      TEXT NOT NULL,
  PRIMARY KEY (collection_id, file_id)
);
CREATE INDEX collection_files_by_file ON collection_files (file_id);
-- The sources a reply was given (documents' chunks), as JSON.
ALTER TABLE messages ADD COLUMN sources TEXT;
