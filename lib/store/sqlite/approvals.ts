import type { ApprovalStore } from '../approval-store.ts'
import { decisionOf, type ApprovalAnswer, type ClaimedReply, type PausedReply, type PendingApproval } from '../chat-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteApprovals extends SqliteRole implements ApprovalStore {
  readonly statements = this.prepare({
    approvalOf: `SELECT a.reply_id, a.decision, a.expires_at, s.owner_id FROM tool_approvals a JOIN sessions s ON s.id = a.session_id WHERE a.call_id = ? AND a.session_id = ?`,
    decideApproval: 'UPDATE tool_approvals SET decision = ?, decided_at = ? WHERE call_id = ?',
    undecidedOf: 'SELECT count(*) AS n FROM tool_approvals WHERE reply_id = ? AND decision IS NULL',
    expireApprovals: `UPDATE tool_approvals SET decision = 'denied', decided_at = expires_at WHERE decision IS NULL AND expires_at <= ? RETURNING reply_id, session_id`,
    nextApprovalExpiry: 'SELECT min(expires_at) AS at FROM tool_approvals WHERE decision IS NULL',
    // Only a paused reply's rows still hold its turn (a claim clears it): a few rows, not every approval ever made.
    answeredReplies: `SELECT DISTINCT a.reply_id, a.session_id FROM tool_approvals a JOIN messages m ON m.id = a.reply_id AND m.status = 'awaiting_approval'
       WHERE a.turn != '' AND NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = a.reply_id AND p.decision IS NULL)`,
    pausedReply: `SELECT m.session_id, m.model, m.event_count, m.created_at, s.owner_id FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ? AND m.status = 'awaiting_approval'`,
    approvalsOf: 'SELECT call_id, name, arguments, turn, decision, decided_at, expires_at FROM tool_approvals WHERE reply_id = ? ORDER BY rowid',
    resumeReply: `UPDATE messages SET status = 'streaming' WHERE id = ?`,
    clearTurn: `UPDATE tool_approvals SET turn = '' WHERE reply_id = ?`,
    pendingApprovals: 'SELECT call_id, name, arguments, reply_id, expires_at FROM tool_approvals WHERE session_id = ? AND decision IS NULL ORDER BY created_at, rowid',
  })

  async answerApproval(sessionId: string, ownerId: string, callId: string, approve: boolean, now: string): Promise<ApprovalAnswer> {
    return this.database.transaction((): ApprovalAnswer => {
      const row = this.statements.approvalOf.get(callId, sessionId)
      if (!row || row.owner_id !== ownerId) return 'missing'
      if (row.decision !== null || String(row.expires_at) <= now) return 'answered'
      this.statements.decideApproval.run(approve ? 'approved' : 'denied', now, callId)
      const replyId = String(row.reply_id)
      return { replyId, remaining: Number(this.statements.undecidedOf.get(replyId)!.n) }
    })
  }

  async expireApprovals(now: string): Promise<PausedReply[]> {
    return this.database.transaction(() => {
      const replies = new Map(this.statements.expireApprovals.all(now).map((row) => [String(row.reply_id), String(row.session_id)]))
      return [...replies].filter(([replyId]) => Number(this.statements.undecidedOf.get(replyId)!.n) === 0).map(([replyId, sessionId]) => ({ replyId, sessionId }))
    })
  }

  async nextApprovalExpiry(): Promise<string | null> {
    const at = this.statements.nextApprovalExpiry.get()?.at
    return at == null ? null : String(at)
  }

  async answeredReplies(): Promise<PausedReply[]> {
    return this.statements.answeredReplies.all().map((row) => ({ replyId: String(row.reply_id), sessionId: String(row.session_id) }))
  }

  async claimAnsweredReply(replyId: string): Promise<ClaimedReply | null> {
    return this.database.transaction(() => {
      const reply = this.statements.pausedReply.get(replyId)
      if (!reply) return null
      const rows = this.statements.approvalsOf.all(replyId)
      const turn = rows.find((row) => row.turn !== '')?.turn
      if (turn === undefined || rows.some((row) => row.decision === null)) return null
      this.statements.resumeReply.run(replyId)
      this.statements.clearTurn.run(replyId)
      return {
        sessionId: String(reply.session_id),
        ownerId: String(reply.owner_id),
        replyId,
        createdAt: String(reply.created_at),
        model: String(reply.model),
        events: Number(reply.event_count ?? 0),
        turn: String(turn),
        calls: rows.map((row) => ({ call_id: String(row.call_id), name: String(row.name), arguments: JSON.parse(String(row.arguments)) as Record<string, unknown>, decision: decisionOf(row, String) })),
      }
    })
  }

  async pendingApprovals(sessionId: string): Promise<PendingApproval[]> {
    return this.statements.pendingApprovals.all(sessionId).map((row) => ({
      call_id: String(row.call_id), name: String(row.name), arguments: JSON.parse(String(row.arguments)) as Record<string, unknown>, reply_id: String(row.reply_id), expires_at: String(row.expires_at),
    }))
  }
}
