-- Chats organised (docs/api.md "Organising chats"): pinned to the top of the list, archived (out
-- of the list, still searchable and restorable), and in at most one folder of their owner's.
ALTER TABLE sessions ADD COLUMN pinned boolean NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN archived boolean NOT NULL DEFAULT false;
ALTER TABLE sessions ADD COLUMN folder text;
-- A user's folders are listed without a scan of their chats.
CREATE INDEX idx_sessions_owner_folder ON sessions (owner_id, folder) WHERE folder IS NOT NULL;
