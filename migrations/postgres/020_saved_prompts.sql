-- Saved prompts (docs/api.md "Saved prompts"): each user's own, put into the composer with `/`.
CREATE TABLE prompts (
  id         text PRIMARY KEY,
  owner_id   text NOT NULL,
  title      text NOT NULL,
  content    text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX idx_prompts_owner_title ON prompts (owner_id, title COLLATE "C", id);
