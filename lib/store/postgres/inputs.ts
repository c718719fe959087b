import type { InputStore, ToolInputAnswer, ToolInputRequest } from '../input-store.ts'
import { PostgresPart } from './part.ts'
import { iso, type Row } from './rows.ts'

/** A jsonb column as postgres.js hands it over: parsed, or its text. */
const jsonOf = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T

const toRequest = (row: Row): ToolInputRequest => ({
  id: row.id,
  sessionId: row.session_id,
  replyId: row.reply_id,
  callId: row.call_id,
  message: row.message,
  requestedSchema: jsonOf(row.requested_schema),
  createdAt: iso(row.created_at)!,
  expiresAt: iso(row.expires_at)!,
})

export class PostgresInputs extends PostgresPart implements InputStore {
  async askForInput(request: ToolInputRequest): Promise<void> {
    const { id, sessionId, replyId, callId, message, requestedSchema, createdAt, expiresAt } = request
    await (await this.db())`
      INSERT INTO tool_inputs (id, session_id, reply_id, call_id, owner_instance, message, requested_schema, created_at, expires_at)
      VALUES (${id}, ${sessionId}, ${replyId}, ${callId}, ${this.instanceId}, ${message}, ${JSON.stringify(requestedSchema)}::jsonb, ${createdAt}, ${expiresAt})`
  }

  async pendingInput(sessionId: string, ownerId: string, callId: string, now: string): Promise<ToolInputRequest | undefined> {
    const [row] = await (await this.db())`
      SELECT i.id, i.session_id, i.reply_id, i.call_id, i.message, i.requested_schema, i.created_at, i.expires_at
      FROM tool_inputs i JOIN sessions s ON s.id = i.session_id
      WHERE i.session_id = ${sessionId} AND s.owner_id = ${ownerId} AND i.call_id = ${callId} AND i.answer IS NULL AND i.expires_at > ${now}
      ORDER BY i.created_at, i.id LIMIT 1`
    return row && toRequest(row)
  }

  async answerInput(id: string, answer: ToolInputAnswer, now: string): Promise<boolean> {
    const updated = await (await this.db())`UPDATE tool_inputs SET answer = ${JSON.stringify(answer)}::jsonb WHERE id = ${id} AND answer IS NULL AND expires_at > ${now}`
    return updated.count > 0
  }

  async inputAnswer(id: string): Promise<ToolInputAnswer | null> {
    const [row] = await (await this.db())`SELECT answer FROM tool_inputs WHERE id = ${id}`
    return row?.answer == null ? null : jsonOf<ToolInputAnswer>(row.answer)
  }

  async dropInput(id: string): Promise<void> {
    await (await this.db())`DELETE FROM tool_inputs WHERE id = ${id}`
  }
}
