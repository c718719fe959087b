import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import { newApiKey, newCookieToken, newPublicId, sameHash, hashSecret } from '../../shared/credentials.ts'
import { AccessError, checkKeyName, checkUserName, WEB_SESSION_MS, type AccessStore, type ApiKeyInfo, type AuditEntry, type AuditRecord, type Authenticated, type Role, type User } from '../access-store.ts'
import { LOCAL_USER_ID } from '../chat-store.ts'

/**
 * Users, API keys, page sign-ins and the audit log, in the chat database (migration 006). Keys
 * and cookie tokens are stored only as SHA-256 hashes; the audit log never holds either.
 */
export class SqliteAccessStore implements AccessStore {
  private readonly db: DatabaseSync
  readonly statements
  /** Checked keys by hash, with what makes them stop working; dropped whenever the database changes. */
  private readonly keyCache = new Map<string, { signedIn: Authenticated; expiresAt: number }>()
  private dataVersion = -1

  constructor(db: DatabaseSync) {
    this.db = db
    const keyColumns = 'k.id, k.user_id, u.name AS user_name, k.name, k.created_at, k.last_used_at, k.expires_at, k.revoked_at'
    this.statements = {
      insertUser: db.prepare('INSERT INTO users (id, name, role, created_at) VALUES (?, ?, ?, ?) RETURNING id, name, role, created_at'),
      userByName: db.prepare('SELECT id, name, role, created_at FROM users WHERE name = ?'),
      listUsers: db.prepare('SELECT id, name, role, created_at FROM users ORDER BY created_at, rowid'),
      insertKey: db.prepare('INSERT INTO api_keys (id, user_id, name, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      keyByHash: db.prepare(
        `SELECT k.id AS key_id, k.hash, k.expires_at, k.revoked_at, u.id, u.name, u.role, u.created_at
         FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.hash = ?`,
      ),
      keyById: db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?`),
      listKeys: db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN users u ON u.id = k.user_id ORDER BY k.created_at, k.rowid`),
      listKeysOf: db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.user_id = ? ORDER BY k.created_at, k.rowid`),
      touchKey: db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
      insertWebSession: db.prepare('INSERT INTO web_sessions (hash, user_id, key_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'),
      webSessionByHash: db.prepare(
        `SELECT w.hash, w.key_id, w.expires_at AS session_expires_at, k.expires_at, k.revoked_at, u.id, u.name, u.role, u.created_at
         FROM web_sessions w JOIN api_keys k ON k.id = w.key_id JOIN users u ON u.id = w.user_id WHERE w.hash = ?`,
      ),
      deleteWebSession: db.prepare('DELETE FROM web_sessions WHERE hash = ?'),
      deleteExpiredWebSessions: db.prepare('DELETE FROM web_sessions WHERE expires_at <= ?'),
      dataVersion: db.prepare('PRAGMA data_version'),
      adoptSessions: db.prepare('UPDATE sessions SET owner_id = ? WHERE owner_id = ?'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      audit: db.prepare('INSERT INTO audit_log (at, user_id, key_id, address, action, target, outcome) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      listAudit: db.prepare('SELECT id, at, user_id, key_id, address, action, target, outcome FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?'),
    } satisfies Record<string, StatementSync>
  }

  async addUser(name: string, role: Role): Promise<User> {
    checkUserName(name)
    if (this.statements.userByName.get(name)) throw new AccessError('conflict', `a user named ${name} exists already`)
    return toUser(this.statements.insertUser.get(newPublicId('usr'), name, role, timestamp())!)
  }

  async user(name: string): Promise<User> {
    const row = this.statements.userByName.get(name)
    if (!row) throw new AccessError('not_found', `no user is named ${name}`)
    return toUser(row)
  }

  async listUsers(): Promise<User[]> {
    return this.statements.listUsers.all().map(toUser)
  }

  /** A new key for `userName`; the key itself is returned this once and never stored. */
  async createKey(userName: string, { name = 'default', expiresAt = null }: { name?: string; expiresAt?: string | null } = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    const user = await this.user(userName)
    checkKeyName(name)
    const { key, hash } = newApiKey()
    const id = newPublicId('key')
    this.statements.insertKey.run(id, user.id, name, hash, timestamp(), expiresAt)
    return { key, info: await this.keyInfo(id) }
  }

  async keyInfo(id: string): Promise<ApiKeyInfo> {
    const row = this.statements.keyById.get(id)
    if (!row) throw new AccessError('not_found', `no key has the id ${id}`)
    return toKeyInfo(row)
  }

  async listKeys(userName?: string): Promise<ApiKeyInfo[]> {
    const rows = userName === undefined ? this.statements.listKeys.all() : this.statements.listKeysOf.all((await this.user(userName)).id)
    return rows.map(toKeyInfo)
  }

  /** Revokes a key at once; the page sign-ins made with it end with it. */
  async revokeKey(id: string): Promise<ApiKeyInfo> {
    const info = await this.keyInfo(id)
    if (info.revoked_at) throw new AccessError('conflict', `the key ${id} was revoked already, at ${info.revoked_at}`)
    this.statements.revokeKey.run(timestamp(), id)
    // Our own writes do not move data_version for us.
    this.keyCache.clear()
    return await this.keyInfo(id)
  }

  /**
   * The user behind an API key, when the key exists, is not revoked and has not expired. Answers
   * are cached until the database changes: PRAGMA data_version tells when another process (the
   * admin command) wrote, and this process's own revocations clear the cache themselves.
   */
  async authenticateKey(key: string, now = Date.now()): Promise<Authenticated | undefined> {
    const hash = hashSecret(key)
    const version = Number(this.statements.dataVersion.get()!.data_version)
    if (version !== this.dataVersion) {
      this.keyCache.clear()
      this.dataVersion = version
    }
    const cached = this.keyCache.get(hash)
    if (cached) return cached.expiresAt > now ? cached.signedIn : undefined
    const row = this.statements.keyByHash.get(hash)
    if (!row || !sameHash(String(row.hash), hash) || !isUsable(row, now)) return undefined
    const signedIn = { user: toUser(row), keyId: String(row.key_id) }
    this.keyCache.set(hash, { signedIn, expiresAt: row.expires_at === null ? Infinity : Date.parse(String(row.expires_at)) })
    return signedIn
  }

  async recordKeyUse(keyId: string): Promise<void> {
    this.statements.touchKey.run(timestamp(), keyId)
  }

  /** Trades a checked key for a page sign-in; returns the cookie's token (stored only hashed). Sign-ins expired by `now` are deleted. */
  async openWebSession(signedIn: Authenticated, now = Date.now()): Promise<{ token: string; expiresAt: string }> {
    const { token, hash } = newCookieToken()
    const expiresAt = new Date(now + WEB_SESSION_MS).toISOString()
    this.statements.deleteExpiredWebSessions.run(new Date(now).toISOString())
    this.statements.insertWebSession.run(hash, signedIn.user.id, signedIn.keyId, new Date(now).toISOString(), expiresAt)
    return { token, expiresAt }
  }

  /** The user behind a page sign-in, while it and its key are valid. */
  async authenticateCookie(token: string, now = Date.now()): Promise<Authenticated | undefined> {
    const row = this.statements.webSessionByHash.get(hashSecret(token))
    if (!row || Date.parse(String(row.session_expires_at)) <= now || !isUsable(row, now)) return undefined
    return { user: toUser(row), keyId: String(row.key_id) }
  }

  async closeWebSession(token: string): Promise<void> {
    this.statements.deleteWebSession.run(hashSecret(token))
  }

  /**
   * Gives `user` every conversation of the built-in local user (made while AUTH was off), and
   * audits it, in one transaction; returns how many.
   */
  async adoptLocalSessions(user: User, address: string): Promise<number> {
    const { begin, commit, rollback, adoptSessions, audit } = this.statements
    begin.run()
    try {
      const count = Number(adoptSessions.run(user.id, LOCAL_USER_ID).changes)
      audit.run(timestamp(), null, null, address, 'adopt_local', `user:${user.name}`, 'ok')
      commit.run()
      return count
    } catch (error) {
      rollback.run()
      throw error
    }
  }

  async audit({ userId = null, keyId = null, address = null, action, target = null, outcome }: AuditEntry): Promise<void> {
    this.statements.audit.run(timestamp(), userId, keyId, address, action, target, outcome)
  }

  /** The newest entries first, before the entry `beforeId` when given. */
  async listAudit(limit: number, beforeId: number | null): Promise<AuditRecord[]> {
    return this.statements.listAudit.all(beforeId ?? Number.MAX_SAFE_INTEGER, limit).map((row) => ({ ...row }) as unknown as AuditRecord)
  }
}

type Row = Record<string, SQLInputValue>

function isUsable(row: Row, now: number): boolean {
  if (row.revoked_at !== null) return false
  return row.expires_at === null || Date.parse(String(row.expires_at)) > now
}

function toUser(row: Row): User {
  return { id: String(row.id), name: String(row.name), role: row.role as Role, created_at: String(row.created_at) }
}

function toKeyInfo(row: Row): ApiKeyInfo {
  const text = (value: SQLInputValue | undefined) => (value == null ? null : String(value))
  return {
    id: String(row.id),
    user_id: String(row.user_id),
    user_name: String(row.user_name),
    name: String(row.name),
    created_at: String(row.created_at),
    last_used_at: text(row.last_used_at),
    expires_at: text(row.expires_at),
    revoked_at: text(row.revoked_at),
  }
}
