import { timestamp } from '../../shared/clock.ts'
import { toIdempotentOutcome, type IdempotencyClaim, type IdempotentOutcome, type IdempotentRequest } from '../chat-store.ts'
import type { IdempotencyStore } from '../idempotency-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteIdempotency extends SqliteRole implements IdempotencyStore {
  readonly statements = this.prepare({
    // Expired keys, and this key's claim when its request died before recording anything.
    forgetIdempotencyKeys: `DELETE FROM idempotency_keys WHERE created_at < ?1
         OR (owner_id = ?2 AND key = ?3 AND message_id IS NULL AND status IS NULL AND created_at < ?4)`,
    claimIdempotencyKey: 'INSERT INTO idempotency_keys (owner_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    getIdempotencyKey: 'SELECT * FROM idempotency_keys WHERE owner_id = ? AND key = ?',
    recordIdempotentOutcome: `UPDATE idempotency_keys SET session_id = coalesce(?, session_id), message_id = coalesce(?, message_id), status = coalesce(?, status),
         answer = coalesce(?, answer) WHERE owner_id = ? AND key = ?`,
    releaseIdempotencyKey: 'DELETE FROM idempotency_keys WHERE owner_id = ? AND key = ?',
  })

  async claimIdempotencyKey({ ownerId, key, fingerprint, expiredBefore, staleBefore }: IdempotentRequest): Promise<IdempotencyClaim> {
    return this.database.transaction((): IdempotencyClaim => {
      this.statements.forgetIdempotencyKeys.run(expiredBefore, ownerId, key, staleBefore)
      if (Number(this.statements.claimIdempotencyKey.run(ownerId, key, fingerprint, timestamp()).changes) > 0) return { state: 'new' }
      const row = this.statements.getIdempotencyKey.get(ownerId, key)!
      if (row.fingerprint !== fingerprint) return { state: 'mismatch' }
      const outcome = toIdempotentOutcome(row)
      return outcome ? { state: 'done', outcome } : { state: 'running' }
    })
  }

  async recordIdempotentOutcome(ownerId: string, key: string, outcome: IdempotentOutcome): Promise<void> {
    const { sessionId = null, messageId = null, status = null, answer = null } = outcome
    this.statements.recordIdempotentOutcome.run(sessionId, messageId, status, answer, ownerId, key)
  }

  async releaseIdempotencyKey(ownerId: string, key: string): Promise<void> {
    this.statements.releaseIdempotencyKey.run(ownerId, key)
  }
}
