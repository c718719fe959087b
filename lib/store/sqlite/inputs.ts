import type { SQLInputValue } from 'node:sqlite'
import type { InputStore, ToolInputAnswer, ToolInputRequest } from '../input-store.ts'
import { SqliteRole } from './database.ts'

const toRequest = (row: Record<string, SQLInputValue>): ToolInputRequest => ({
  id: String(row.id),
  sessionId: String(row.session_id),
  replyId: String(row.reply_id),
  callId: String(row.call_id),
  message: String(row.message),
  requestedSchema: JSON.parse(String(row.requested_schema)) as Record<string, unknown>,
  createdAt: String(row.created_at),
  expiresAt: String(row.expires_at),
})

export class SqliteInputs extends SqliteRole implements InputStore {
  readonly statements = this.prepare({
    insert: `INSERT INTO tool_inputs (id, session_id, reply_id, call_id, message, requested_schema, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    pending: `SELECT i.id, i.session_id, i.reply_id, i.call_id, i.message, i.requested_schema, i.created_at, i.expires_at
      FROM tool_inputs i JOIN sessions s ON s.id = i.session_id
      WHERE i.session_id = ? AND s.owner_id = ? AND i.call_id = ? AND i.answer IS NULL AND i.expires_at > ? ORDER BY i.created_at, i.id LIMIT 1`,
    answer: 'UPDATE tool_inputs SET answer = ? WHERE id = ? AND answer IS NULL AND expires_at > ?',
    read: 'SELECT answer FROM tool_inputs WHERE id = ?',
    drop: 'DELETE FROM tool_inputs WHERE id = ?',
  })

  async askForInput(request: ToolInputRequest): Promise<void> {
    const { id, sessionId, replyId, callId, message, requestedSchema, createdAt, expiresAt } = request
    this.statements.insert.run(id, sessionId, replyId, callId, message, JSON.stringify(requestedSchema), createdAt, expiresAt)
  }

  async pendingInput(sessionId: string, ownerId: string, callId: string, now: string): Promise<ToolInputRequest | undefined> {
    const row = this.statements.pending.get(sessionId, ownerId, callId, now)
    return row && toRequest(row)
  }

  async answerInput(id: string, answer: ToolInputAnswer, now: string): Promise<boolean> {
    return Number(this.statements.answer.run(JSON.stringify(answer), id, now).changes) > 0
  }

  async inputAnswer(id: string): Promise<ToolInputAnswer | null> {
    const row = this.statements.read.get(id)
    return row?.answer == null ? null : (JSON.parse(String(row.answer)) as ToolInputAnswer)
  }

  async dropInput(id: string): Promise<void> {
    this.statements.drop.run(id)
  }
}
