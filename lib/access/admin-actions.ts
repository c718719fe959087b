import { AccessError, type AccessStore, type ApiKeyInfo, type Role, type User } from '../store/access-store.ts'
import type { Principal } from './control.ts'
import { clientAddress } from '../http/client-address.ts'
import { parseDuration } from '../shared/config.ts'
import { HttpProblem } from '../shared/problem.ts'

/** The longest a key may be made to last. */
const MAX_KEY_LIFETIME_MS = 10 * 8760 * 3_600_000

/**
 * What an admin can do, shared by `npm run admin` and the admin routes, each change audited with
 * who made it (`actor`: a user id, or `cli` for the command line). Throws AccessError.
 */
export class AdminActions {
  private readonly store: AccessStore
  private readonly actor: { userId: string | null; keyId: string | null; address: string | null }

  constructor(store: AccessStore, actor: { userId: string | null; keyId: string | null; address: string | null }) {
    this.store = store
    this.actor = actor
  }

  async addUser(name: string, role: Role): Promise<User> {
    const user = await this.store.addUser(name, role)
    await this.audit('user_add', `user:${user.name}`)
    return user
  }

  /**
   * A new key; `expiresIn` is a Go duration such as 720h, at most 10 years. The key is returned
   * this once. An admin minting a key for another user can read that user's chats with it, so
   * that is audited as an admin read of them too.
   */
  async createKey(userName: string, { name, expiresIn }: { name?: string | undefined; expiresIn?: string | undefined } = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    let expiresAt: string | null = null
    if (expiresIn !== undefined) {
      const ms = parseDuration(expiresIn)
      if (ms === undefined || ms <= 0 || ms > MAX_KEY_LIFETIME_MS) throw new AccessError('invalid', `"${expiresIn}" is not a duration from 1s to 87600h (10 years), such as 24h or 720h`)
      expiresAt = new Date(Date.now() + ms).toISOString()
    }
    const created = await this.store.createKey(userName, { ...(name ? { name } : {}), expiresAt })
    await this.audit('key_create', `key:${created.info.id} user:${created.info.user_name}`)
    if (this.actor.userId !== null && this.actor.userId !== created.info.user_id) await this.audit('admin_read', `keys_for:${created.info.user_name}`)
    return created
  }

  async revokeKey(id: string): Promise<ApiKeyInfo> {
    const info = await this.store.revokeKey(id)
    await this.audit('key_revoke', `key:${id}`)
    return info
  }

  /** Records an admin action done elsewhere (an MCP server's sign-in) in the audit log. */
  async record(action: string, target: string): Promise<void> {
    await this.audit(action, target)
  }

  private async audit(action: string, target: string): Promise<void> {
    await this.store.audit({ ...this.actor, action, target, outcome: 'ok' })
  }
}

/** The problem an admin route answers for an AccessError. */
export function accessProblem(error: unknown): unknown {
  if (!(error instanceof AccessError)) return error
  const [status, kind] = ({ not_found: [404, 'not_found'], conflict: [409, 'conflict'], invalid: [400, 'validation'] } as const)[error.reason]
  return new HttpProblem(status, kind, `${error.message[0]!.toUpperCase()}${error.message.slice(1)}.`)
}

/** The actions of the admin a request acts for, audited under their user, key and address. */
export function adminActionsFor(store: AccessStore, principal: Principal, request: Request): AdminActions {
  return new AdminActions(store, { userId: principal.userId, keyId: principal.keyId, address: clientAddress(request) })
}
