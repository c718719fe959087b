-- OAuth sign-ins to MCP servers (docs/tools.md "Servers that sign in with OAuth"): each server's
-- grant (client, tokens, discovery) and the sign-ins started and not finished, all sealed with
-- MCP_OAUTH_KEY: nothing here is a secret in clear.
CREATE TABLE mcp_oauth_grants (
  server     TEXT PRIMARY KEY,
  sealed     TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE mcp_oauth_sign_ins (
  state_hash TEXT PRIMARY KEY,
  server     TEXT NOT NULL,
  sealed     TEXT NOT NULL,
  started_by TEXT,
  expires_at TEXT NOT NULL
);
