import { timestamp } from '../../shared/clock.ts'
import { type IdempotencyClaim, type IdempotentOutcome, type IdempotentRequest, toIdempotentOutcome } from '../chat-store.ts'
import type { IdempotencyStore } from '../idempotency-store.ts'
import { PostgresPart } from './part.ts'

export class PostgresIdempotency extends PostgresPart implements IdempotencyStore {

  async claimIdempotencyKey({ ownerId, key, fingerprint, expiredBefore, staleBefore }: IdempotentRequest): Promise<IdempotencyClaim> {
    return (await this.db()).begin(async (tx): Promise<IdempotencyClaim> => {
      // Expired keys, and this key's claim when its request died before recording anything.
      await tx`
        DELETE FROM idempotency_keys WHERE created_at < ${expiredBefore}
          OR (owner_id = ${ownerId} AND key = ${key} AND message_id IS NULL AND status IS NULL AND created_at < ${staleBefore})`
      // A claim made at the same moment elsewhere is waited for, then seen below.
      const [claimed] = await tx`
        INSERT INTO idempotency_keys (owner_id, key, fingerprint, created_at) VALUES (${ownerId}, ${key}, ${fingerprint}, ${timestamp()})
        ON CONFLICT DO NOTHING RETURNING 1`
      if (claimed) return { state: 'new' }
      const [row] = await tx`SELECT * FROM idempotency_keys WHERE owner_id = ${ownerId} AND key = ${key}`
      if (row!.fingerprint !== fingerprint) return { state: 'mismatch' }
      const outcome = toIdempotentOutcome(row!)
      return outcome ? { state: 'done', outcome } : { state: 'running' }
    })
  }


  async recordIdempotentOutcome(ownerId: string, key: string, outcome: IdempotentOutcome): Promise<void> {
    const { sessionId = null, messageId = null, status = null, answer = null } = outcome
    await (await this.db())`
      UPDATE idempotency_keys SET session_id = coalesce(${sessionId}, session_id), message_id = coalesce(${messageId}, message_id),
        status = coalesce(${status}::integer, status), answer = coalesce(${answer}, answer)
      WHERE owner_id = ${ownerId} AND key = ${key}`
  }


  async releaseIdempotencyKey(ownerId: string, key: string): Promise<void> {
    await (await this.db())`DELETE FROM idempotency_keys WHERE owner_id = ${ownerId} AND key = ${key}`
  }
}
