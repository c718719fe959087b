-- Several instances on one database (docs/instances.md): who runs what, for how long,
-- and what moves between instances: a reply's events, its cancel, and shared limits.

-- Each live instance, with the lease every reply it runs holds: renewed every INSTANCE_LEASE / 3;
-- once it has run out, the other instances close that instance's replies as interrupted.
CREATE TABLE instances (
  id          text PRIMARY KEY,
  started_at  timestamptz NOT NULL,
  lease_until timestamptz NOT NULL
);

-- The instance running a streaming reply (or a running response), and a cancel asked elsewhere.
ALTER TABLE messages ADD COLUMN owner_instance text, ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
ALTER TABLE responses ADD COLUMN owner_instance text, ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- One reply at a time per session, whichever instance started it.
CREATE UNIQUE INDEX idx_messages_one_streaming ON messages (session_id) WHERE status = 'streaming';

-- A running reply's (or response's) SSE frames, written by its owner in batches, for followers
-- on other instances; a NOTIFY on chat_ollama_events (payload: the stream id) wakes them.
-- Removed a minute after the stream's last batch.
CREATE TABLE stream_events (
  stream_id  text NOT NULL,
  first_seq  integer NOT NULL,
  frames     text[] NOT NULL,
  final      boolean NOT NULL DEFAULT false,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (stream_id, first_seq)
);
CREATE INDEX idx_stream_events_final ON stream_events (written_at) WHERE final;

-- RATE_LIMIT and the failed-credential limit, shared: one token bucket per key.
CREATE TABLE rate_buckets (
  key     text PRIMARY KEY,
  tokens  double precision NOT NULL,
  allowed boolean NOT NULL,
  at      timestamptz NOT NULL
);

-- MAX_CONCURRENT_CHATS_PER_USER, shared: each slot held, and each user's count of them, changed
-- together in one statement; a dead instance's slots are given back by the others.
CREATE TABLE chat_slots (
  id          text PRIMARY KEY,
  user_id     text NOT NULL,
  instance_id text NOT NULL
);
CREATE INDEX idx_chat_slots_instance ON chat_slots (instance_id);
CREATE TABLE chat_slot_counts (
  user_id text PRIMARY KEY,
  running integer NOT NULL CHECK (running >= 0)
);
