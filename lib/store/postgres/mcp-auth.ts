import type { McpAuthStore, PendingSignIn, StoredGrant } from '../mcp-auth-store.ts'
import { PostgresPart } from './part.ts'
import { iso } from './rows.ts'

export class PostgresMcpAuth extends PostgresPart implements McpAuthStore {
  async grant(server: string): Promise<StoredGrant | undefined> {
    const [row] = await (await this.db())`SELECT sealed, version FROM mcp_oauth_grants WHERE server = ${server}`
    return row && { sealed: row.sealed, version: Number(row.version) }
  }

  async saveGrant(server: string, sealed: string, version: number, now: string): Promise<number | false> {
    const sql = await this.db()
    const written = version === 0
      ? await sql`INSERT INTO mcp_oauth_grants (server, sealed, version, updated_at) VALUES (${server}, ${sealed}, 1, ${now}) ON CONFLICT (server) DO NOTHING`
      : await sql`UPDATE mcp_oauth_grants SET sealed = ${sealed}, version = version + 1, updated_at = ${now} WHERE server = ${server} AND version = ${version}`
    return written.count > 0 ? version + 1 : false
  }

  async dropGrant(server: string): Promise<void> {
    await (await this.db())`DELETE FROM mcp_oauth_grants WHERE server = ${server}`
  }

  async startSignIn({ stateHash, server, sealed, startedBy, expiresAt }: PendingSignIn): Promise<void> {
    await (await this.db())`
      INSERT INTO mcp_oauth_sign_ins (state_hash, server, sealed, started_by, expires_at) VALUES (${stateHash}, ${server}, ${sealed}, ${startedBy}, ${expiresAt})`
  }

  async takeSignIn(stateHash: string, now: string): Promise<PendingSignIn | undefined> {
    const sql = await this.db()
    const [row] = await sql`DELETE FROM mcp_oauth_sign_ins WHERE state_hash = ${stateHash} RETURNING server, sealed, started_by, expires_at`
    await sql`DELETE FROM mcp_oauth_sign_ins WHERE expires_at <= ${now}`
    const expiresAt = row && iso(row.expires_at)!
    if (!row || expiresAt! <= now) return undefined
    return { stateHash, server: row.server, sealed: row.sealed, startedBy: row.started_by, expiresAt: expiresAt! }
  }
}
