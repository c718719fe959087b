-- A stable order for clients that walk every session (sync, export): created_at never changes,
-- so a keyset walk in this order skips nothing, whatever is updated meanwhile.
CREATE INDEX idx_sessions_created_id ON sessions(created_at, id);
