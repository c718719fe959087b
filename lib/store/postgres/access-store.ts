import { timestamp } from '../../shared/clock.ts'
import { hashSecret, newApiKey, newCookieToken, newPublicId, sameHash } from '../../shared/credentials.ts'
import { AccessError, checkKeyName, checkUserName, WEB_SESSION_MS, type AccessStore, type ApiKeyInfo, type AuditEntry, type AuditRecord, type Authenticated, type Role, type User } from '../access-store.ts'
import { LOCAL_USER_ID } from '../chat-store.ts'
import { iso } from './rows.ts'
import { PostgresPart } from './part.ts'

type Row = Record<string, any>

/**
 * Users, API keys, page sign-ins and the audit log on PostgreSQL. Keys and cookie tokens are
 * stored only as SHA-256 hashes. Keys are checked against the database on every request (one
 * indexed lookup), so a revocation by any process takes effect on the next one.
 */
export class PostgresAccessStore extends PostgresPart implements AccessStore {

  async addUser(name: string, role: Role): Promise<User> {
    checkUserName(name)
    const sql = await this.db()
    const [row] = await sql`
      INSERT INTO users (id, name, role, created_at) VALUES (${newPublicId('usr')}, ${name}, ${role}, ${timestamp()})
      ON CONFLICT DO NOTHING RETURNING id, name, role, created_at`
    if (!row) throw new AccessError('conflict', `a user named ${name} exists already`)
    return toUser(row)
  }

  async user(name: string): Promise<User> {
    const [row] = await (await this.db())`SELECT id, name, role, created_at FROM users WHERE lower(name) = lower(${name})`
    if (!row) throw new AccessError('not_found', `no user is named ${name}`)
    return toUser(row)
  }

  async listUsers(): Promise<User[]> {
    return (await (await this.db())`SELECT id, name, role, created_at FROM users ORDER BY created_at, seq`).map(toUser)
  }

  async createKey(userName: string, { name = 'default', expiresAt = null }: { name?: string; expiresAt?: string | null } = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    const user = await this.user(userName)
    checkKeyName(name)
    const { key, hash } = newApiKey()
    const id = newPublicId('key')
    await (await this.db())`INSERT INTO api_keys (id, user_id, name, hash, created_at, expires_at) VALUES (${id}, ${user.id}, ${name}, ${hash}, ${timestamp()}, ${expiresAt})`
    return { key, info: await this.keyInfo(id) }
  }

  async keyInfo(id: string): Promise<ApiKeyInfo> {
    const [row] = await (await this.db())`
      SELECT k.id, k.user_id, u.name AS user_name, k.name, k.created_at, k.last_used_at, k.expires_at, k.revoked_at
      FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ${id}`
    if (!row) throw new AccessError('not_found', `no key has the id ${id}`)
    return toKeyInfo(row)
  }

  async listKeys(userName?: string): Promise<ApiKeyInfo[]> {
    const sql = await this.db()
    const owner = userName === undefined ? sql`` : sql`WHERE k.user_id = ${(await this.user(userName)).id}`
    const rows = await sql`
      SELECT k.id, k.user_id, u.name AS user_name, k.name, k.created_at, k.last_used_at, k.expires_at, k.revoked_at
      FROM api_keys k JOIN users u ON u.id = k.user_id ${owner} ORDER BY k.created_at, k.seq`
    return rows.map(toKeyInfo)
  }

  async revokeKey(id: string): Promise<ApiKeyInfo> {
    const info = await this.keyInfo(id)
    if (info.revoked_at) throw new AccessError('conflict', `the key ${id} was revoked already, at ${info.revoked_at}`)
    await (await this.db())`UPDATE api_keys SET revoked_at = ${timestamp()} WHERE id = ${id} AND revoked_at IS NULL`
    return this.keyInfo(id)
  }

  async authenticateKey(key: string, now = Date.now()): Promise<Authenticated | undefined> {
    const hash = hashSecret(key)
    const [row] = await (await this.db())`
      SELECT k.id AS key_id, k.hash, k.expires_at, k.revoked_at, u.id, u.name, u.role, u.created_at
      FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = ${hash}`
    if (!row || !sameHash(row.hash, hash) || !isUsable(row, now)) return undefined
    return { user: toUser(row), keyId: row.key_id }
  }

  async recordKeyUse(keyId: string): Promise<void> {
    await (await this.db())`UPDATE api_keys SET last_used_at = ${timestamp()} WHERE id = ${keyId}`
  }

  async openWebSession(signedIn: Authenticated, now = Date.now()): Promise<{ token: string; expiresAt: string }> {
    const { token, hash } = newCookieToken()
    const at = new Date(now).toISOString()
    const expiresAt = new Date(now + WEB_SESSION_MS).toISOString()
    await (await this.db()).begin(async (tx) => {
      await tx`DELETE FROM web_sessions WHERE expires_at <= ${at}`
      await tx`INSERT INTO web_sessions (hash, user_id, key_id, created_at, expires_at) VALUES (${hash}, ${signedIn.user.id}, ${signedIn.keyId}, ${at}, ${expiresAt})`
    })
    return { token, expiresAt }
  }

  async authenticateCookie(token: string, now = Date.now()): Promise<Authenticated | undefined> {
    const [row] = await (await this.db())`
      SELECT w.key_id, w.expires_at AS session_expires_at, k.expires_at, k.revoked_at, u.id, u.name, u.role, u.created_at
      FROM web_sessions w JOIN api_keys k ON k.id = w.key_id JOIN users u ON u.id = w.user_id WHERE w.hash = ${hashSecret(token)}`
    if (!row || row.session_expires_at.getTime() <= now || !isUsable(row, now)) return undefined
    return { user: toUser(row), keyId: row.key_id }
  }

  async closeWebSession(token: string): Promise<void> {
    await (await this.db())`DELETE FROM web_sessions WHERE hash = ${hashSecret(token)}`
  }

  async adoptLocalSessions(user: User, address: string): Promise<number> {
    return (await this.db()).begin(async (tx) => {
      const moved = await tx`UPDATE sessions SET owner_id = ${user.id} WHERE owner_id = ${LOCAL_USER_ID}`
      await tx`INSERT INTO audit_log (at, address, action, target, outcome) VALUES (${timestamp()}, ${address}, 'adopt_local', ${`user:${user.name}`}, 'ok')`
      return moved.count
    })
  }

  async audit({ userId = null, keyId = null, address = null, action, target = null, outcome }: AuditEntry): Promise<void> {
    await (await this.db())`
      INSERT INTO audit_log (at, user_id, key_id, address, action, target, outcome)
      VALUES (${timestamp()}, ${userId}, ${keyId}, ${address}, ${action}, ${target}, ${outcome})`
  }

  async listAudit(limit: number, beforeId: number | null): Promise<AuditRecord[]> {
    const rows = await (await this.db())`
      SELECT id, at, user_id, key_id, address, action, target, outcome FROM audit_log
      WHERE id < ${beforeId ?? Number.MAX_SAFE_INTEGER} ORDER BY id DESC LIMIT ${limit}`
    return rows.map((row) => ({ ...row, id: Number(row.id), at: iso(row.at)! }) as AuditRecord)
  }
}

function isUsable(row: Row, now: number): boolean {
  if (row.revoked_at !== null) return false
  return row.expires_at === null || row.expires_at.getTime() > now
}

function toUser(row: Row): User {
  return { id: row.id, name: row.name, role: row.role as Role, created_at: iso(row.created_at)! }
}

function toKeyInfo(row: Row): ApiKeyInfo {
  return {
    id: row.id,
    user_id: row.user_id,
    user_name: row.user_name,
    name: row.name,
    created_at: iso(row.created_at)!,
    last_used_at: iso(row.last_used_at),
    expires_at: iso(row.expires_at),
    revoked_at: iso(row.revoked_at),
  }
}
