import { type ApprovalAnswer, type ClaimedReply, type PendingApproval, type PausedReply, decisionOf } from '../chat-store.ts'
import type { ApprovalStore } from '../approval-store.ts'
import { PostgresPart } from './part.ts'
import { iso, oneReplyAtATime } from './rows.ts'

export class PostgresApprovals extends PostgresPart implements ApprovalStore {

  async answerApproval(sessionId: string, ownerId: string, callId: string, approve: boolean, now: string): Promise<ApprovalAnswer> {
    return (await this.db()).begin(async (tx): Promise<ApprovalAnswer> => {
      // Locked: two answers to one call at once, on two instances, are taken one after the other.
      const [row] = await tx`
        SELECT a.reply_id, a.decision, a.expires_at <= ${now}::timestamptz AS expired, s.owner_id
        FROM tool_approvals a JOIN sessions s ON s.id = a.session_id WHERE a.call_id = ${callId} AND a.session_id = ${sessionId} FOR UPDATE OF a`
      if (!row || row.owner_id !== ownerId) return 'missing'
      if (row.decision !== null || row.expired) return 'answered'
      await tx`UPDATE tool_approvals SET decision = ${approve ? 'approved' : 'denied'}, decided_at = ${now} WHERE call_id = ${callId}`
      const [{ n }] = await tx`SELECT count(*)::int AS n FROM tool_approvals WHERE reply_id = ${row.reply_id} AND decision IS NULL` as unknown as [{ n: number }]
      return { replyId: row.reply_id as string, remaining: n }
    })
  }


  async expireApprovals(now: string): Promise<PausedReply[]> {
    // The outer query sees the table as it was before the update: what still waits is what is not yet due.
    const rows = await (await this.db())`
      WITH expired AS (
        UPDATE tool_approvals SET decision = 'denied', decided_at = expires_at WHERE decision IS NULL AND expires_at <= ${now} RETURNING reply_id, session_id)
      SELECT DISTINCT reply_id, session_id FROM expired e
      WHERE NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = e.reply_id AND p.decision IS NULL AND p.expires_at > ${now})`
    return rows.map((row) => ({ replyId: row.reply_id as string, sessionId: row.session_id as string }))
  }


  async nextApprovalExpiry(): Promise<string | null> {
    const [row] = await (await this.db())`SELECT min(expires_at) AS at FROM tool_approvals WHERE decision IS NULL`
    return iso(row?.at ?? null)
  }


  async answeredReplies(): Promise<PausedReply[]> {
    // Only a paused reply's rows still hold its turn (a claim clears it): a few rows, not every approval ever made.
    const rows = await (await this.db())`
      SELECT DISTINCT a.reply_id, a.session_id FROM tool_approvals a JOIN messages m ON m.id = a.reply_id AND m.status = 'awaiting_approval'
      WHERE a.turn <> '' AND NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = a.reply_id AND p.decision IS NULL)`
    return rows.map((row) => ({ replyId: row.reply_id as string, sessionId: row.session_id as string }))
  }


  async claimAnsweredReply(replyId: string): Promise<ClaimedReply | null> {
    return oneReplyAtATime((await this.db()).begin(async (tx) => {
      const [reply] = await tx`
        SELECT m.session_id, m.model, m.event_count, m.created_at, s.owner_id FROM messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.id = ${replyId} AND m.status = 'awaiting_approval' FOR UPDATE OF m`
      if (!reply) return null
      const rows = await tx`SELECT call_id, name, arguments, turn, decision, decided_at, expires_at FROM tool_approvals WHERE reply_id = ${replyId} ORDER BY created_at, call_id`
      const turn = rows.find((row) => row.turn !== '')?.turn as string | undefined
      if (turn === undefined || rows.some((row) => row.decision === null)) return null
      await tx`UPDATE messages SET status = 'streaming', owner_instance = ${this.instanceId} WHERE id = ${replyId}`
      await tx`UPDATE tool_approvals SET turn = '' WHERE reply_id = ${replyId}`
      return {
        sessionId: reply.session_id as string,
        ownerId: reply.owner_id as string,
        replyId,
        createdAt: iso(reply.created_at)!,
        model: reply.model as string,
        events: Number(reply.event_count ?? 0),
        turn,
        calls: rows.map((row) => ({ call_id: row.call_id as string, name: row.name as string, arguments: JSON.parse(row.arguments as string) as Record<string, unknown>, decision: decisionOf(row, (value) => iso(value as Date)!) })),
      }
    }))
  }


  async pendingApprovals(sessionId: string): Promise<PendingApproval[]> {
    const rows = await (await this.db())`
      SELECT call_id, name, arguments, reply_id, expires_at FROM tool_approvals WHERE session_id = ${sessionId} AND decision IS NULL ORDER BY created_at, call_id`
    return rows.map((row) => ({ call_id: row.call_id, name: row.name, arguments: JSON.parse(row.arguments as string) as Record<string, unknown>, reply_id: row.reply_id, expires_at: iso(row.expires_at)! }))
  }
}
