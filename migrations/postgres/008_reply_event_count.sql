-- Safe retries (docs/api.md "Safe retries"): how many SSE events a reply sent, stored with its final
-- write (before its last event leaves), so that a retry answered from the store ends with the
-- same event ids.
ALTER TABLE messages ADD COLUMN event_count integer;
