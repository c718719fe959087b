-- Search (GET /v1/search): a message's tsvector is stored with it instead of computed from its
-- text by each search, made from its first 100,000 characters (as SQLite's index, migration
-- sqlite/022), and only once it is no longer streaming (search never shows a reply still being
-- written; a checkpoint of a streaming reply then computes no vector). A search that reads rows (a
-- common word, or a row's recheck) never vectorizes a message again: with a huge imported message
-- present, every such search took seconds. Ranking reads the same stored vector.
ALTER TABLE messages ADD COLUMN search tsvector
  GENERATED ALWAYS AS (CASE WHEN status <> 'streaming' THEN search_vector(left(content, 100000)) END) STORED;
CREATE INDEX idx_messages_search_stored ON messages USING gin (search);
DROP INDEX idx_messages_search;
