import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import { changedSettings, changesContent, type Folder, type SessionFilter, DEFAULT_TITLE, LOCAL_USER_ID, settingsOf, systemMessageTime, type ContextCut, toContextCut, type NewSession, type Page, type Session, type SessionChange, type SessionCursor, type SessionDeletion, type SessionOrder, type SessionSettings } from '../chat-store.ts'
import type { TransactionSql } from 'postgres'
import type { SessionStore } from '../session-store.ts'
import { PostgresPart } from './part.ts'
import { SESSION_COLUMNS, toSession, insertMessage } from './rows.ts'

export class PostgresSessions extends PostgresPart implements SessionStore {

  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    return this.readSession(await this.db(), id, ownerId)
  }

  /** A session with its system prompt (idx_messages_system finds it without a scan of the session's messages). */
  private async readSession(sql: TransactionSql | Awaited<ReturnType<PostgresPart['db']>>, id: string, ownerId: string): Promise<Session | undefined> {
    const [row] = await sql`
      SELECT ${sql.unsafe(SESSION_COLUMNS)},
        (SELECT content FROM messages WHERE session_id = sessions.id AND role = 'system') AS system
      FROM sessions WHERE id = ${id} AND owner_id = ${ownerId}`
    return row && toSession(row)
  }


  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID, settings = {} }: NewSession = {}): Promise<Session> {
    return (await this.db()).begin(async (tx) => {
      const now = timestamp()
      await tx`INSERT INTO sessions (id, title, created_at, updated_at, owner_id, settings) VALUES (${id}, ${title}, ${now}, ${now}, ${ownerId}, ${JSON.stringify(settings)}::jsonb)`
      if (system) await insertMessage(tx, { id: randomUUID(), sessionId: id, role: 'system', content: system, model: null, status: 'complete', createdAt: now })
      return (await this.readSession(tx, id, ownerId))!
    })
  }


  async updateSession(id: string, ownerId: string, change: SessionChange): Promise<Session | undefined> {
    return (await this.db()).begin(async (tx) => {
      // Locked as a turn locks it: a turn on another instance sees the system prompt before or after, whole.
      const [row] = await tx`SELECT settings FROM sessions WHERE id = ${id} AND owner_id = ${ownerId} FOR UPDATE`
      if (!row) return undefined
      const now = timestamp()
      if (change.system !== undefined) await this.setSystem(tx, id, change.system, now)
      if (changesContent(change)) await tx`UPDATE sessions SET title = coalesce(${change.title ?? null}, title), settings = ${JSON.stringify(changedSettings(settingsOf(row.settings), change))}::jsonb, updated_at = ${now} WHERE id = ${id}`
      await tx`UPDATE sessions SET pinned = coalesce(${change.pinned ?? null}::boolean, pinned), archived = coalesce(${change.archived ?? null}::boolean, archived),
        folder = CASE WHEN ${change.folder !== undefined} THEN ${change.folder ?? null}::text ELSE folder END WHERE id = ${id}`
      return this.readSession(tx, id, ownerId)
    })
  }

  /** Sets, adds (first, keeping the active path) or removes (its children kept) the session's system message. */
  private async setSystem(tx: TransactionSql, id: string, system: string | null, now: string): Promise<void> {
    const [existing] = await tx`SELECT id FROM messages WHERE session_id = ${id} AND role = 'system'`
    if (system) {
      if (existing) {
        await tx`UPDATE messages SET content = ${system} WHERE id = ${existing.id}`
        return
      }
      const [session] = await tx`SELECT current_message_id, (SELECT min(created_at) FROM messages WHERE session_id = ${id}) AS first_at FROM sessions WHERE id = ${id}`
      const systemId = randomUUID()
      await insertMessage(tx, { id: systemId, sessionId: id, role: 'system', content: system, model: null, status: 'complete', createdAt: systemMessageTime(session!.first_at, now), parentId: null })
      await tx`UPDATE messages SET parent_id = ${systemId} WHERE session_id = ${id} AND parent_id IS NULL AND id <> ${systemId}`
      // The insert made it the leaf; a session with messages keeps the one it had.
      if (session!.current_message_id) await tx`UPDATE sessions SET current_message_id = ${session!.current_message_id} WHERE id = ${id}`
    } else if (existing) {
      // The delete trigger hands its children to its parent (none: they come first) and moves a leaf that was it.
      await tx`DELETE FROM messages WHERE id = ${existing.id}`
    }
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


  async sessionOwnerAndSettings(id: string): Promise<{ ownerId: string; settings: SessionSettings } | undefined> {
    const [row] = await (await this.db())`SELECT owner_id, settings FROM sessions WHERE id = ${id}`
    return row && { ownerId: row.owner_id, settings: settingsOf(row.settings) }
  }


  async sessionHost(id: string): Promise<string | null> {
    const [row] = await (await this.db())`
      SELECT ollama_host FROM messages WHERE session_id = ${id} AND role = 'assistant' AND status <> 'streaming'
      ORDER BY created_at DESC, seq DESC LIMIT 1`
    return row?.ollama_host ?? null
  }


  async listSessions(ownerId: string, limit: number, after: SessionCursor | null, order: SessionOrder = 'updated', filter: SessionFilter = {}): Promise<Page<Session, SessionCursor>> {
    const sql = await this.db()
    const columns = sql.unsafe(SESSION_COLUMNS)
    const filtered = sql`${filter.archived === undefined ? sql`` : sql`AND archived = ${filter.archived}`}
      ${filter.pinned === undefined ? sql`` : sql`AND pinned = ${filter.pinned}`}
      ${filter.folder === undefined ? sql`` : filter.folder === null ? sql`AND folder IS NULL` : sql`AND folder = ${filter.folder}`}`
    const rows = order === 'created'
      ? after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ${filtered} AND (created_at, id) > (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at, id LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ${filtered} ORDER BY created_at, id LIMIT ${limit + 1}`
      : after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ${filtered} AND (updated_at, id) < (${after[0]}::timestamptz, ${after[1]}) ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ${filtered} ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
    const items = rows.slice(0, limit).map(toSession)
    const last = items.at(-1)
    const sortKey = order === 'created' ? last?.created_at : last?.updated_at
    return { items, next: rows.length > limit && last ? [sortKey!, last.id] : null }
  }


  async listFolders(ownerId: string): Promise<Folder[]> {
    const rows = await (await this.db())`
      SELECT folder, count(*) AS count FROM sessions WHERE owner_id = ${ownerId} AND folder IS NOT NULL AND NOT archived GROUP BY folder ORDER BY folder COLLATE "C"`
    return rows.map((row) => ({ name: row.folder, count: Number(row.count) }))
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
