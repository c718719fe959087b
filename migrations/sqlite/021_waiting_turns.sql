-- Approvals are looked up by what still waits: a session's waiting calls (every chat turn asks
-- first), and the paused replies by the rows that still hold their turn (a resume clears it).
-- Indexed on those rows only, not every approval ever answered.
CREATE INDEX idx_tool_approvals_session_waiting ON tool_approvals(session_id, created_at) WHERE decision IS NULL;
CREATE INDEX idx_tool_approvals_waiting_turns ON tool_approvals(reply_id) WHERE turn != '';
