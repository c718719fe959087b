-- A search never reads past the start of a matched message's row (docs/api.md "Search"): with one
-- 50 MB message (an import from before imports were bounded), SQLite loaded the whole value to cut
-- the snippet's first 20,000 characters, and reached created_at, stored after it, through its
-- overflow chain: ~430 ms per search. The index keeps no copy of the text (contentless); for a
-- message longer than 20,000 characters only, it keeps those first characters (`head`) and its
-- created_at. Everything else a hit shows (id, session, role) sits before the text in the row.
-- Same rows indexed as by 022: the first 100,000 characters of every message not streaming.
DROP TRIGGER trg_messages_fts_insert;
DROP TRIGGER trg_messages_fts_delete;
DROP TRIGGER trg_messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5(content, head UNINDEXED, created_at UNINDEXED,
  content='', contentless_delete=1, contentless_unindexed=1, tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages WHEN new.status <> 'streaming' BEGIN
  INSERT INTO messages_fts (rowid, content, head, created_at)
  SELECT new.rowid, substr(new.content, 1, 100000), substr(new.content, 1, 20000), new.created_at WHERE length(new.content) > 20000
  UNION ALL SELECT new.rowid, new.content, NULL, NULL WHERE length(new.content) <= 20000;
END;
CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages WHEN old.status <> 'streaming' BEGIN
  DELETE FROM messages_fts WHERE rowid = old.rowid;
END;
CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content, status ON messages WHEN old.status <> 'streaming' OR new.status <> 'streaming' BEGIN
  DELETE FROM messages_fts WHERE rowid = old.rowid;
  INSERT INTO messages_fts (rowid, content, head, created_at)
  SELECT new.rowid, substr(new.content, 1, 100000), substr(new.content, 1, 20000), new.created_at WHERE new.status <> 'streaming' AND length(new.content) > 20000
  UNION ALL SELECT new.rowid, new.content, NULL, NULL WHERE new.status <> 'streaming' AND length(new.content) <= 20000;
END;
INSERT INTO messages_fts (rowid, content, head, created_at)
  SELECT rowid, substr(content, 1, 100000),
    CASE WHEN length(content) > 20000 THEN substr(content, 1, 20000) END,
    CASE WHEN length(content) > 20000 THEN created_at END
  FROM messages WHERE status <> 'streaming';
