/** Users, API keys, page sign-ins and the audit log: the types, and the interface every store backend implements. */
export type Role = 'admin' | 'user'

export interface User {
  id: string
  name: string
  role: Role
  created_at: string
}

export interface ApiKeyInfo {
  id: string
  user_id: string
  user_name: string
  name: string
  created_at: string
  last_used_at: string | null
  expires_at: string | null
  revoked_at: string | null
}

/** Who a credential stands for, once checked. */
export interface Authenticated {
  user: User
  keyId: string
}

export interface AuditEntry {
  userId?: string | null
  keyId?: string | null
  address?: string | null
  action: string
  target?: string | null
  outcome: 'ok' | 'denied' | 'failed'
}

/** One audit log entry as it was written. */
export interface AuditRecord {
  id: number
  at: string
  user_id: string | null
  key_id: string | null
  address: string | null
  action: string
  target: string | null
  outcome: string
}

export class AccessError extends Error {
  override name = 'AccessError'
  readonly reason: 'not_found' | 'conflict' | 'invalid'
  constructor(reason: AccessError['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

/** What a terminal or a log would act on instead of showing: C0/C1 controls and bidirectional overrides. */
const CONTROL_CHARACTERS = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u

/** Text as a terminal may show it: control and bidirectional characters as \\uXXXX escapes. */
export function printable(text: string): string {
  return text.replace(new RegExp(CONTROL_CHARACTERS, 'gu'), (char) => `\\u${char.codePointAt(0)!.toString(16).padStart(4, '0')}`)
}

/** Throws AccessError `invalid` for a name that is not a user name (every backend checks alike). */
export function checkUserName(name: string): void {
  if (!/^[A-Za-z0-9][\w.@-]{0,63}$/.test(name)) {
    throw new AccessError('invalid', `"${name}" is not a user name: use 1 to 64 letters, digits, and . _ @ - (starting with a letter or digit)`)
  }
}

/** Throws AccessError `invalid` for a key name a terminal or a log would act on. */
export function checkKeyName(name: string): void {
  if (CONTROL_CHARACTERS.test(name)) throw new AccessError('invalid', 'a key name may not hold control or bidirectional formatting characters')
}

/** How long a page sign-in lasts (the cookie's Max-Age). */
export const WEB_SESSION_MS = 30 * 24 * 3_600_000

/** The interface every store backend implements. */
export interface AccessStore {
  addUser(name: string, role: Role): Promise<User>
  user(name: string): Promise<User>
  listUsers(): Promise<User[]>
  /** A new key for `userName`; the key itself is returned this once and never stored. */
  createKey(userName: string, options?: { name?: string; expiresAt?: string | null }): Promise<{ key: string; info: ApiKeyInfo }>
  keyInfo(id: string): Promise<ApiKeyInfo>
  listKeys(userName?: string): Promise<ApiKeyInfo[]>
  /** Revokes a key at once; the page sign-ins made with it end with it. */
  revokeKey(id: string): Promise<ApiKeyInfo>
  /**
   * The user behind an API key, when the key exists, is not revoked and has not expired. A
   * revocation, also by another process (the admin command), takes effect on the next call.
   */
  authenticateKey(key: string, now?: number): Promise<Authenticated | undefined>
  recordKeyUse(keyId: string): Promise<void>
  /** Trades a checked key for a page sign-in; returns the cookie's token (stored only hashed). Sign-ins expired by `now` are deleted. */
  openWebSession(signedIn: Authenticated, now?: number): Promise<{ token: string; expiresAt: string }>
  /** The user behind a page sign-in, while it and its key are valid. */
  authenticateCookie(token: string, now?: number): Promise<Authenticated | undefined>
  closeWebSession(token: string): Promise<void>
  /**
   * Gives `user` every conversation of the built-in local user (made while AUTH was off), and
   * audits it, in one transaction; returns how many.
   */
  adoptLocalSessions(user: User, address: string): Promise<number>
  /** Appends to the audit log (never key material or message text). */
  audit(entry: AuditEntry): Promise<void>
  /** The newest entries first, before the entry `beforeId` when given. */
  listAudit(limit: number, beforeId: number | null): Promise<AuditRecord[]>
}
