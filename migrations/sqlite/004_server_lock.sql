-- One server per database: the server that holds this row renews it while it runs; a second
-- server refuses to start instead of marking the first one's running replies interrupted.
CREATE TABLE server_lock (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  holder      TEXT NOT NULL,
  hostname    TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  acquired_at TEXT NOT NULL,
  renewed_at  TEXT NOT NULL
);
