import type { IdempotencyClaim, IdempotentOutcome, IdempotentRequest } from './chat-store.ts'

/** Idempotency-Key claims and what the first request made (docs/api.md "Safe retries"). */
export interface IdempotencyStore {
  /**
   * Claims a request's Idempotency-Key for its user: `new` (now theirs to run), `running` (the
   * first request has not recorded what it made yet), `done` with that, or `mismatch` (the key
   * came with another request). Forgets keys older than `expiredBefore` on the way.
   */
  claimIdempotencyKey(request: IdempotentRequest): Promise<IdempotencyClaim>
  /** Records (or adds to) what the request that claimed the key made. */
  recordIdempotentOutcome(ownerId: string, key: string, outcome: IdempotentOutcome): Promise<void>
  /** Forgets a claim whose request stored nothing: its retry runs again. */
  releaseIdempotencyKey(ownerId: string, key: string): Promise<void>
}
