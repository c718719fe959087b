import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import { DEFAULT_TITLE, LOCAL_USER_ID, toContextCut, type ContextCut, type NewSession, type Page, type Session, type SessionCursor, type SessionDeletion, type SessionOrder } from '../chat-store.ts'
import type { SessionStore } from '../session-store.ts'
import { SqliteRole } from './database.ts'
import { SESSION_COLUMNS, toSession } from './rows.ts'

export class SqliteSessions extends SqliteRole implements SessionStore {
  readonly statements = this.prepare({
    sessionHost: `SELECT ollama_host FROM messages WHERE session_id = ? AND role = 'assistant' AND status != 'streaming'
       ORDER BY created_at DESC, rowid DESC LIMIT 1`,
    sessionMetadata: 'SELECT metadata FROM sessions WHERE id = ?',
    setSessionMetadata: 'UPDATE sessions SET metadata = ? WHERE id = ?',
    renameSession: `UPDATE sessions SET title = ?, updated_at = ? WHERE id = ? AND owner_id = ? RETURNING ${SESSION_COLUMNS}`,
    contextCut: 'SELECT context_cut_message_id, context_summary FROM sessions WHERE id = ?',
    setContextCut: 'UPDATE sessions SET context_cut_message_id = ?, context_summary = ? WHERE id = ?',
    listSessionsFirst: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?`,
    listSessionsAfter: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ? AND (updated_at, id) < (?, ?)
       ORDER BY updated_at DESC, id DESC LIMIT ?`,
    listSessionsByCreationFirst: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ? ORDER BY created_at, id LIMIT ?`,
    listSessionsByCreationAfter: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`,
  })

  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    const row = this.database.statements.getSession.get(id, ownerId)
    return row && toSession(row)
  }

  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID }: NewSession = {}): Promise<Session> {
    return this.database.transaction(() => {
      const now = timestamp()
      this.database.statements.insertSession.run(id, title, now, now, ownerId)
      if (system) this.database.insert(randomUUID(), id, 'system', system, null, 'complete', now)
      return toSession(this.database.statements.getSession.get(id, ownerId)!)
    })
  }

  async renameSession(id: string, ownerId: string, title: string): Promise<Session | undefined> {
    const row = this.statements.renameSession.get(title, timestamp(), id, ownerId)
    return row && toSession(row)
  }

  async deleteSession(id: string, ownerId: string): Promise<SessionDeletion> {
    const { statements } = this.database
    return this.database.transaction(() => {
      if (statements.getStreamingReply.get(id)) return statements.sessionOwner.get(id)?.owner_id === ownerId ? 'busy' : 'missing'
      return Number(statements.deleteSession.run(id, ownerId).changes) > 0 ? 'deleted' : 'missing'
    })
  }

  async sessionOwner(id: string): Promise<string | undefined> {
    const row = this.database.statements.sessionOwner.get(id)
    return row && String(row.owner_id)
  }

  async sessionHost(id: string): Promise<string | null> {
    const row = this.statements.sessionHost.get(id)
    return row?.ollama_host == null ? null : String(row.ollama_host)
  }

  async listSessions(ownerId: string, limit: number, after: SessionCursor | null, order: SessionOrder = 'updated'): Promise<Page<Session, SessionCursor>> {
    const [first, next] = order === 'created'
      ? [this.statements.listSessionsByCreationFirst, this.statements.listSessionsByCreationAfter]
      : [this.statements.listSessionsFirst, this.statements.listSessionsAfter]
    const rows = after ? next.all(ownerId, after[0], after[1], limit + 1) : first.all(ownerId, limit + 1)
    const items = rows.slice(0, limit).map(toSession)
    const last = items.at(-1)
    const sortKey = order === 'created' ? last?.created_at : last?.updated_at
    return { items, next: rows.length > limit && last ? [sortKey!, last.id] : null }
  }

  async sessionMetadata(id: string): Promise<Record<string, string>> {
    const row = this.statements.sessionMetadata.get(id)
    return row?.metadata == null ? {} : (JSON.parse(String(row.metadata)) as Record<string, string>)
  }

  async setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    this.statements.setSessionMetadata.run(JSON.stringify(metadata), id)
  }

  async contextCut(sessionId: string): Promise<ContextCut | null> {
    return toContextCut(this.statements.contextCut.get(sessionId))
  }

  async setContextCut(sessionId: string, cut: ContextCut): Promise<void> {
    this.statements.setContextCut.run(cut.messageId, cut.summary, sessionId)
  }
}
