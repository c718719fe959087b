-- Saved prompts (docs/api.md "Saved prompts"): each user's own, put into the composer with `/`.
CREATE TABLE prompts (
  id         TEXT PRIMARY KEY,
  owner_id   TEXT NOT NULL,
  title      TEXT NOT NULL,
  content    TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX idx_prompts_owner_title ON prompts(owner_id, title, id);
