import type { McpAuthStore, PendingSignIn, StoredGrant } from '../mcp-auth-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteMcpAuth extends SqliteRole implements McpAuthStore {
  readonly statements = this.prepare({
    grant: 'SELECT sealed, version FROM mcp_oauth_grants WHERE server = ?',
    insertGrant: 'INSERT INTO mcp_oauth_grants (server, sealed, version, updated_at) VALUES (?, ?, 1, ?) ON CONFLICT (server) DO NOTHING',
    updateGrant: 'UPDATE mcp_oauth_grants SET sealed = ?, version = version + 1, updated_at = ? WHERE server = ? AND version = ?',
    dropGrant: 'DELETE FROM mcp_oauth_grants WHERE server = ?',
    startSignIn: 'INSERT INTO mcp_oauth_sign_ins (state_hash, server, sealed, started_by, expires_at) VALUES (?, ?, ?, ?, ?)',
    takeSignIn: 'DELETE FROM mcp_oauth_sign_ins WHERE state_hash = ? RETURNING server, sealed, started_by, expires_at',
    clearExpired: 'DELETE FROM mcp_oauth_sign_ins WHERE expires_at <= ?',
  })

  async grant(server: string): Promise<StoredGrant | undefined> {
    const row = this.statements.grant.get(server)
    return row && { sealed: String(row.sealed), version: Number(row.version) }
  }

  async saveGrant(server: string, sealed: string, version: number, now: string): Promise<number | false> {
    const changes = version === 0 ? this.statements.insertGrant.run(server, sealed, now).changes : this.statements.updateGrant.run(sealed, now, server, version).changes
    return Number(changes) > 0 ? version + 1 : false
  }

  async dropGrant(server: string): Promise<void> {
    this.statements.dropGrant.run(server)
  }

  async startSignIn({ stateHash, server, sealed, startedBy, expiresAt }: PendingSignIn): Promise<void> {
    this.statements.startSignIn.run(stateHash, server, sealed, startedBy, expiresAt)
  }

  async takeSignIn(stateHash: string, now: string): Promise<PendingSignIn | undefined> {
    const row = this.statements.takeSignIn.get(stateHash)
    this.statements.clearExpired.run(now)
    if (!row || String(row.expires_at) <= now) return undefined
    return { stateHash, server: String(row.server), sealed: String(row.sealed), startedBy: row.started_by === null ? null : String(row.started_by), expiresAt: String(row.expires_at) }
  }
}
