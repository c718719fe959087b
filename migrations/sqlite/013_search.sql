-- Search (GET /v1/search): full-text indexes of message texts and session titles, FTS5 with
-- external content (the text is stored once, in its table), kept in sync by triggers. unicode61
-- with remove_diacritics 2: case and accents do not matter (cafe finds Café).
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
INSERT INTO messages_fts (rowid, content) SELECT rowid, content FROM messages;
CREATE TRIGGER trg_messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER trg_messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER trg_messages_fts_update AFTER UPDATE OF content ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;

CREATE VIRTUAL TABLE sessions_fts USING fts5(title, content='sessions', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
INSERT INTO sessions_fts (rowid, title) SELECT rowid, title FROM sessions;
CREATE TRIGGER trg_sessions_fts_insert AFTER INSERT ON sessions BEGIN
  INSERT INTO sessions_fts (rowid, title) VALUES (new.rowid, new.title);
END;
CREATE TRIGGER trg_sessions_fts_delete AFTER DELETE ON sessions BEGIN
  INSERT INTO sessions_fts (sessions_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
END;
CREATE TRIGGER trg_sessions_fts_update AFTER UPDATE OF title ON sessions BEGIN
  INSERT INTO sessions_fts (sessions_fts, rowid, title) VALUES ('delete', old.rowid, old.title);
  INSERT INTO sessions_fts (rowid, title) VALUES (new.rowid, new.title);
END;
