-- Search indexes a message's first 100,000 characters (as PostgreSQL's does, migration
-- postgres/013): a message far larger (a huge import from before imports were bounded) made FTS5
-- decode a million positions of its words for every search that matched it, seconds each. The
-- triggers index, and take out of the index, exactly that prefix; the index is rebuilt so.
DROP TRIGGER trg_messages_fts_insert;
DROP TRIGGER trg_messages_fts_delete;
DROP TRIGGER trg_messages_fts_update;
CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 100000));
END;
CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, substr(old.content, 1, 100000));
END;
CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, substr(old.content, 1, 100000));
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, substr(new.content, 1, 100000));
END;
INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
INSERT INTO messages_fts (rowid, content) SELECT rowid, substr(content, 1, 100000) FROM messages;
