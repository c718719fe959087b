/**
 * What this service keeps of its OAuth sign-ins to MCP servers (docs/tools.md "Servers that sign
 * in with OAuth"): per server, one grant (the registered client, the tokens, what discovery found),
 * and the sign-ins an admin has started and not finished. Both are stored sealed (lib/shared/sealed.ts):
 * the store never sees a token or a secret in clear.
 */

/** A server's grant as stored: sealed, with the version each write moves on by one. */
export interface StoredGrant {
  sealed: string
  version: number
}

/** A sign-in started by an admin, waiting for the browser to come back with its state. */
export interface PendingSignIn {
  /** SHA-256 of the state sent to the authorization server (the state itself is not kept). */
  stateHash: string
  server: string
  /** The PKCE verifier and the callback address, sealed. */
  sealed: string
  startedBy: string | null
  expiresAt: string
}

export interface McpAuthStore {
  grant(server: string): Promise<StoredGrant | undefined>
  /**
   * Writes `server`'s grant if it is still at `version` (0: none yet): false when another
   * instance wrote it meanwhile (read it again). Returns the new version otherwise.
   */
  saveGrant(server: string, sealed: string, version: number, now: string): Promise<number | false>
  dropGrant(server: string): Promise<void>
  startSignIn(signIn: PendingSignIn): Promise<void>
  /** The sign-in `stateHash` names, still open at `now`, taken (a state is good once); expired ones are cleared. */
  takeSignIn(stateHash: string, now: string): Promise<PendingSignIn | undefined>
}
