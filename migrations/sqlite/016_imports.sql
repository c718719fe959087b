-- Export and import (docs/api.md "Export and import"): where each imported conversation came from, per
-- user, so that importing the same file again adds nothing. The row goes with its session, so a
-- conversation deleted here imports again.
CREATE TABLE import_sources (
  owner_id   TEXT NOT NULL,
  source_id  TEXT NOT NULL,
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  PRIMARY KEY (owner_id, source_id)
);
CREATE INDEX idx_import_sources_session ON import_sources(session_id);
