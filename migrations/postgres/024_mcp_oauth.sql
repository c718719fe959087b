-- OAuth sign-ins to MCP servers (docs/tools.md "Servers that sign in with OAuth"): each server's
-- grant (client, tokens, discovery) and the sign-ins started and not finished, all sealed with
-- MCP_OAUTH_KEY: nothing here is a secret in clear.
CREATE TABLE mcp_oauth_grants (
  server     text PRIMARY KEY,
  sealed     text NOT NULL,
  version    integer NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE mcp_oauth_sign_ins (
  state_hash text PRIMARY KEY,
  server     text NOT NULL,
  sealed     text NOT NULL,
  started_by text,
  expires_at timestamptz NOT NULL
);
