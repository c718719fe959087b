import type { AccessStore, Authenticated, Role } from '../store/access-store.ts'
import { clientAddress } from '../http/client-address.ts'
import { originHost } from '../shared/host-check.ts'
import type { Config } from '../shared/config.ts'
import { looksLikeApiKey } from '../shared/credentials.ts'
import type { Logger } from '../observability/log.ts'
import { HttpProblem } from '../shared/problem.ts'
import { LOCAL_USER_ID } from '../store/chat-store.ts'
import { DatabaseBuckets, TokenBuckets, type BucketAnswer, type RateBuckets } from './token-buckets.ts'
import type { SharedBuckets } from '../store/cluster.ts'

/** Who a request acts for. */
export interface Principal {
  userId: string
  name: string
  role: Role
  /** The API key it came with (directly, or behind the page's cookie); null for the local user. */
  keyId: string | null
  via: 'local' | 'key' | 'cookie' | 'anonymous'
}

/** Who may call a function: anyone (`/health`, the page, sign-in), any user, or admins. */
export type Access = 'public' | 'user' | 'admin'

/** Everything made while AUTH is off belongs to this one built-in user. */
export const LOCAL_PRINCIPAL: Principal = { userId: LOCAL_USER_ID, name: 'local', role: 'admin', keyId: null, via: 'local' }
/** The user per-user limits count a request against; null for the local user, the only user while AUTH is off. */
export const limitedUserOf = (principal: Principal): string | null => (principal.via === 'local' ? null : principal.userId)

const ANONYMOUS: Principal = { userId: '', name: '', role: 'user', keyId: null, via: 'anonymous' }

export const SESSION_COOKIE = 'chat_ollama_session'

/** Presented-but-wrong credentials an address may send before it is refused for a while. */
const FAILURES_PER_MINUTE = 10
/** A key's last_used_at is written at most this often, not on every request. */
const KEY_USE_WRITE_MS = 60_000
/** A user's 429s go to the audit log at most once per this period. */
const RATE_LIMIT_AUDIT_MS = 60_000
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** What a request's rate limit said, for the RateLimit headers of its answer. */
export interface RateLimitState {
  answer: BucketAnswer
  policy: string
}

/**
 * Decides who a request acts for (AUTH, API keys, the page's cookie), refuses what it may not do
 * (401, 403), and limits how often (per user; failed credentials per address). Audit entries for
 * failures, sign-ins and 429s are written here; never a key or a cookie's value.
 */
export class AccessControl {
  readonly store: AccessStore
  private readonly config: Config
  private readonly log: Logger
  private readonly failures: RateBuckets
  private readonly perUser: RateBuckets | null
  private readonly keyUseWritten = new Map<string, number>()
  private readonly rateLimitAudited = new Map<string, number>()

  /** `shared`: buckets in the database, so that every instance on it counts together (PostgreSQL). */
  constructor(config: Config, store: AccessStore, log: Logger, { failuresPerMinute = FAILURES_PER_MINUTE, shared = null as SharedBuckets | null } = {}) {
    this.config = config
    this.store = store
    this.log = log
    const buckets = (capacity: number, windowMs: number, prefix: string) =>
      shared ? new DatabaseBuckets(capacity, windowMs, shared, prefix) : new TokenBuckets(capacity, windowMs)
    this.failures = buckets(failuresPerMinute, 60_000, 'failed')
    this.perUser = config.rateLimit ? buckets(config.rateLimit.requests, config.rateLimit.windowMs, 'user') : null
  }

  /**
   * The principal of `request` for a function with `access`; throws 401 (no or bad credential),
   * 403 (not an admin, or a cookie on a cross-site write) or 429 (too many failures, or requests).
   * `onRateLimit` gets the user's bucket, for the RateLimit headers, also when it refuses.
   */
  async principalFor(request: Request, access: Access, onRateLimit: (state: RateLimitState) => void): Promise<Principal> {
    if (access === 'public') return ANONYMOUS
    const principal = this.config.auth === 'off' ? LOCAL_PRINCIPAL : await this.authenticate(request)
    if (access === 'admin' && principal.role !== 'admin') {
      throw new HttpProblem(403, 'forbidden', 'This route is for admins.')
    }
    if (this.perUser && principal.via !== 'local') await this.limit(principal, request, onRateLimit)
    return principal
  }

  /** Checks an API key presented to sign in (the page's form); throws 401 or 429 like a bad Bearer key. */
  async signIn(request: Request, key: string): Promise<Authenticated> {
    const address = clientAddress(request)
    const signedIn = looksLikeApiKey(key) ? await this.store.authenticateKey(key) : undefined
    if (!signedIn) {
      await this.failed(address, 'login')
      throw unauthorized('That API key is not valid: it is unknown, revoked or expired.')
    }
    await this.store.audit({ userId: signedIn.user.id, keyId: signedIn.keyId, address, action: 'login', outcome: 'ok' })
    return signedIn
  }

  /** The cookie's token of a request, when it carries one. */
  cookieToken(request: Request): string | undefined {
    const header = request.headers.get('cookie')
    if (!header) return undefined
    for (const part of header.split(';')) {
      const [name, ...value] = part.trim().split('=')
      if (name === SESSION_COOKIE) return value.join('=')
    }
    return undefined
  }

  /**
   * A presented key is checked first: a valid one always works, so failures from an address
   * (behind a proxy: every user's) never lock out a valid key. Only wrong keys are counted.
   */
  private async authenticate(request: Request): Promise<Principal> {
    const address = clientAddress(request)
    // An empty header is no credential at all, not a guess.
    const authorization = request.headers.get('authorization') || null
    const token = authorization === null ? this.cookieToken(request) : undefined
    if (authorization === null && !token) {
      throw unauthorized('This server needs an API key: send it as Authorization: Bearer <key>, or sign in on the page.')
    }
    if (authorization !== null) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
      const signedIn = match && looksLikeApiKey(match[1]!) ? await this.store.authenticateKey(match[1]!) : undefined
      if (!signedIn) {
        await this.failed(address, 'authenticate')
        throw unauthorized('The API key is not valid: it is unknown, revoked or expired, or not sent as Authorization: Bearer <key>.')
      }
      return await this.principalOf(signedIn, 'key')
    }
    // Not counted: a cookie token is 32 random bytes, and a stale one is a browser whose sign-in ended.
    const signedIn = await this.store.authenticateCookie(token!)
    if (!signedIn) {
      throw unauthorized('Your sign-in has ended (signed out, or its key was revoked or expired); sign in again.')
    }
    if (!SAFE_METHODS.has(request.method) && !isSameOrigin(request)) {
      throw new HttpProblem(403, 'forbidden', 'A change made with the page\'s sign-in must come from the page itself (same origin).')
    }
    return await this.principalOf(signedIn, 'cookie')
  }

  private async principalOf({ user, keyId }: Authenticated, via: 'key' | 'cookie'): Promise<Principal> {
    await this.noteKeyUse(keyId)
    return { userId: user.id, name: user.name, role: user.role, keyId, via }
  }

  private async limit(principal: Principal, request: Request, onRateLimit: (state: RateLimitState) => void): Promise<void> {
    const { requests, windowMs } = this.config.rateLimit!
    const answer = await this.perUser!.take(principal.userId)
    onRateLimit({ answer, policy: `"per-user";q=${requests};w=${Math.round(windowMs / 1000)}` })
    if (answer.allowed) return
    const now = Date.now()
    if (now - (this.rateLimitAudited.get(principal.userId) ?? 0) >= RATE_LIMIT_AUDIT_MS) {
      this.rateLimitAudited.set(principal.userId, now)
      await this.store.audit({ userId: principal.userId, keyId: principal.keyId, address: clientAddress(request), action: 'rate_limited', outcome: 'denied' })
    }
    throw new HttpProblem(429, 'rate_limit', `You sent more than ${requests} requests in ${Math.round(windowMs / 1000)} s (RATE_LIMIT); try again in ${answer.retryAfterSeconds} s.`, {
      headers: { 'retry-after': String(answer.retryAfterSeconds) },
    })
  }

  /** Counts a wrong credential from `address`; past FAILURES_PER_MINUTE it is refused with 429 (and no longer audited). */
  private async failed(address: string, action: 'login' | 'authenticate'): Promise<void> {
    const answer = await this.failures.take(address)
    if (!answer.allowed) {
      throw new HttpProblem(429, 'rate_limit', 'Too many failed sign-ins from this address; try again later.', {
        headers: { 'retry-after': String(answer.retryAfterSeconds) },
      })
    }
    await this.store.audit({ address, action: `${action}_failed`, outcome: 'failed' })
    this.log.warn('credential refused', { address, action })
  }

  private async noteKeyUse(keyId: string): Promise<void> {
    const now = Date.now()
    if (now - (this.keyUseWritten.get(keyId) ?? 0) < KEY_USE_WRITE_MS) return
    this.keyUseWritten.set(keyId, now)
    await this.store.recordKeyUse(keyId)
  }
}

function unauthorized(detail: string): HttpProblem {
  return new HttpProblem(401, 'unauthorized', detail, { headers: { 'www-authenticate': 'Bearer realm="chat-ollama"' } })
}

/** Whether a request comes from the page's own origin: Sec-Fetch-Site, else Origin against Host. */
function isSameOrigin(request: Request): boolean {
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site === 'same-origin'
  const origin = request.headers.get('origin')
  return origin !== null && originHost(origin) === (request.headers.get('host') ?? new URL(request.url).host)
}
