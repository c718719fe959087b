import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import { DEFAULT_TITLE, LOCAL_USER_ID, type ContextCut, toContextCut, type NewSession, type Page, type Session, type SessionCursor, type SessionDeletion, type SessionOrder } from '../chat-store.ts'
import type { SessionStore } from '../session-store.ts'
import { PostgresPart } from './part.ts'
import { toSession, insertMessage } from './rows.ts'

export class PostgresSessions extends PostgresPart implements SessionStore {

  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    const [row] = await (await this.db())`SELECT id, title, created_at, updated_at, message_count, current_message_id FROM sessions WHERE id = ${id} AND owner_id = ${ownerId}`
    return row && toSession(row)
  }


  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID }: NewSession = {}): Promise<Session> {
    return (await this.db()).begin(async (tx) => {
      const now = timestamp()
      await tx`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${id}, ${title}, ${now}, ${now}, ${ownerId})`
      if (system) await insertMessage(tx, { id: randomUUID(), sessionId: id, role: 'system', content: system, model: null, status: 'complete', createdAt: now })
      const [row] = await tx`SELECT id, title, created_at, updated_at, message_count, current_message_id FROM sessions WHERE id = ${id}`
      return toSession(row!)
    })
  }


  async renameSession(id: string, ownerId: string, title: string): Promise<Session | undefined> {
    const [row] = await (await this.db())`
      UPDATE sessions SET title = ${title}, updated_at = ${timestamp()} WHERE id = ${id} AND owner_id = ${ownerId}
      RETURNING id, title, created_at, updated_at, message_count, current_message_id`
    return row && toSession(row)
  }


  async deleteSession(id: string, ownerId: string): Promise<SessionDeletion> {
    return (await this.db()).begin(async (tx): Promise<SessionDeletion> => {
      // The session's row locked first, as a turn locks it: a reply that began on any instance is seen.
      const [session] = await tx`SELECT 1 FROM sessions WHERE id = ${id} AND owner_id = ${ownerId} FOR UPDATE`
      if (!session) return 'missing'
      const [streaming] = await tx`SELECT 1 FROM messages WHERE session_id = ${id} AND status = 'streaming'`
      if (streaming) return 'busy'
      await tx`DELETE FROM sessions WHERE id = ${id}`
      return 'deleted'
    })
  }


  async sessionOwner(id: string): Promise<string | undefined> {
    const [row] = await (await this.db())`SELECT owner_id FROM sessions WHERE id = ${id}`
    return row?.owner_id
  }


  async sessionHost(id: string): Promise<string | null> {
    const [row] = await (await this.db())`
      SELECT ollama_host FROM messages WHERE session_id = ${id} AND role = 'assistant' AND status <> 'streaming'
      ORDER BY created_at DESC, seq DESC LIMIT 1`
    return row?.ollama_host ?? null
  }


  async listSessions(ownerId: string, limit: number, after: SessionCursor | null, order: SessionOrder = 'updated'): Promise<Page<Session, SessionCursor>> {
    const sql = await this.db()
    const columns = sql`id, title, created_at, updated_at, message_count, current_message_id`
    const rows = order === 'created'
      ? after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} AND (created_at, id) > (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at, id LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ORDER BY created_at, id LIMIT ${limit + 1}`
      : after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} AND (updated_at, id) < (${after[0]}::timestamptz, ${after[1]}) ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
    const items = rows.slice(0, limit).map(toSession)
    const last = items.at(-1)
    const sortKey = order === 'created' ? last?.created_at : last?.updated_at
    return { items, next: rows.length > limit && last ? [sortKey!, last.id] : null }
  }


  async sessionMetadata(id: string): Promise<Record<string, string>> {
    const [row] = await (await this.db())`SELECT metadata FROM sessions WHERE id = ${id}`
    return (row?.metadata as Record<string, string> | null) ?? {}
  }


  async setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    const sql = await this.db()
    await sql`UPDATE sessions SET metadata = ${sql.json(metadata)} WHERE id = ${id}`
  }


  async contextCut(sessionId: string): Promise<ContextCut | null> {
    const [row] = await (await this.db())`SELECT context_cut_message_id, context_summary FROM sessions WHERE id = ${sessionId}`
    return toContextCut(row)
  }


  async setContextCut(sessionId: string, cut: ContextCut): Promise<void> {
    await (await this.db())`UPDATE sessions SET context_cut_message_id = ${cut.messageId}, context_summary = ${cut.summary} WHERE id = ${sessionId}`
  }
}
