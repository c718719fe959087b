import { createHash } from 'node:crypto'
import { IMAGE_DIGEST, isEncodedImage } from '../images/image-text.ts'
import type { AppContext } from '../context.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { IdempotentOutcome } from '../store/chat-store.ts'

/** How long a key is remembered (docs/api.md "Safe retries"). */
export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000
const KEY_SHAPE = /^[\x20-\x7e]{1,255}$/

/** A request's Idempotency-Key, as given; undefined without one; 400 for one that is not 1..255 printable characters. */
export function idempotencyKeyOf(request: Request): string | undefined {
  const key = request.headers.get('idempotency-key')
  if (key === null) return undefined
  if (!KEY_SHAPE.test(key)) throw new HttpProblem(400, 'validation', 'Idempotency-Key must be 1 to 255 printable ASCII characters.')
  return key
}

/** What makes two requests the same: the route (its method and path) and the body as parsed. */
export function fingerprintOf(route: string, body: unknown): string {
  // An image decoded off the event loop counts by its digest (its bytes would be written out here).
  const text = JSON.stringify(body ?? null, (_key, value: unknown) => (isEncodedImage(value) ? `sha256:${value[IMAGE_DIGEST]}` : value))
  return createHash('sha256').update(route).update('\n').update(text).digest('base64url')
}

/** The key a request claimed, for recording what it made (or forgetting it when it made nothing). */
export interface ClaimedKey {
  ownerId: string
  key: string
}

/**
 * Claims `key` for the user's request: null when it is theirs to run (a new key, a forgotten
 * one), else what the first request with it made. 422 when the key came with another request;
 * 409 (Retry-After: 1) while that first request has not stored anything yet.
 */
export async function claimIdempotencyKey(app: AppContext, ownerId: string, key: string, fingerprint: string): Promise<IdempotentOutcome | null> {
  const now = Date.now()
  const claim = await app.store.claimIdempotencyKey({
    ownerId,
    key,
    fingerprint,
    expiredBefore: new Date(now - IDEMPOTENCY_WINDOW_MS).toISOString(),
    // A first request that stored nothing within a whole chat's time died on the way.
    staleBefore: new Date(now - app.config.chatTimeoutMs).toISOString(),
  })
  if (claim.state === 'new') return null
  if (claim.state === 'mismatch') {
    throw new HttpProblem(422, 'idempotency_mismatch', 'This Idempotency-Key was used with another request (another route or body); use a new key for a new request.')
  }
  if (claim.state === 'running') {
    throw new HttpProblem(409, 'conflict', 'A request with this Idempotency-Key is still being set up; retry in a moment.', { headers: { 'retry-after': '1' } })
  }
  return claim.outcome
}

/**
 * Runs a route that answers at once (POST /v1/sessions) at most once per key: its JSON answer and
 * status are kept, and a retry gets them again. `fingerprint` (fingerprintOf) says what makes two
 * requests the same; `headersOf` gives the answer's headers from its body.
 */
export async function answerOnce(
  app: AppContext,
  request: Request,
  ownerId: string,
  fingerprint: string,
  run: () => Promise<{ status: number; body: unknown }>,
  headersOf: (body: any) => Record<string, string> = () => ({}),
): Promise<Response> {
  const key = idempotencyKeyOf(request)
  const respond = (status: number, json: unknown) => Response.json(json, { status, headers: headersOf(json) })
  if (key === undefined) {
    const answer = await run()
    return respond(answer.status, answer.body)
  }
  const earlier = await claimIdempotencyKey(app, ownerId, key, fingerprint)
  if (earlier) return respond(earlier.status!, JSON.parse(earlier.answer!))
  let answer: { status: number; body: unknown }
  try {
    answer = await run()
  } catch (error) {
    await app.store.releaseIdempotencyKey(ownerId, key)
    throw error
  }
  await app.store.recordIdempotentOutcome(ownerId, key, { status: answer.status, answer: JSON.stringify(answer.body) })
  return respond(answer.status, answer.body)
}
