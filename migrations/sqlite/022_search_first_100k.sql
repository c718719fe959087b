-- Search indexes a message's first 100,000 characters (as PostgreSQL's does, migration
-- postgres/013), and only once it is no longer streaming (search never shows a reply still being
-- written): a message far larger (a huge import from before imports were bounded) made FTS5
-- decode a million positions of its words for every search that matched it, seconds each; and
-- every checkpoint of a streaming reply re-indexed its text. The triggers index, and take out of
-- the index, exactly that prefix of the rows that are not streaming; the index is rebuilt so.
DROP TRIGGER trg_messages_fts_insert;
DROP TRIGGER trg_messages_fts_delete;
DROP TRIGGER trg_messages_fts_update;
CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages WHEN new.status <> 'streaming' BEGIN
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 100000));
END;
CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages WHEN old.status <> 'streaming' BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, substr(old.content, 1, 100000));
END;
CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content, status ON messages WHEN old.status <> 'streaming' OR new.status <> 'streaming' BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) SELECT 'delete', old.rowid, substr(old.content, 1, 100000) WHERE old.status <> 'streaming';
  INSERT INTO messages_fts (rowid, content) SELECT new.rowid, substr(new.content, 1, 100000) WHERE new.status <> 'streaming';
END;
INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
INSERT INTO messages_fts (rowid, content) SELECT rowid, substr(content, 1, 100000) FROM messages WHERE status <> 'streaming';
