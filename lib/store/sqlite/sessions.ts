import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import { changedSettings, changesContent, type Folder, type SessionFilter, DEFAULT_TITLE, LOCAL_USER_ID, settingsOf, systemMessageTime, toContextCut, type ContextCut, type NewSession, type Page, type Session, type SessionChange, type SessionCursor, type SessionDeletion, type SessionOrder, type SessionSettings } from '../chat-store.ts'
import type { SessionStore } from '../session-store.ts'
import { SqliteRole } from './database.ts'
import { SESSION_COLUMNS, toSession } from './rows.ts'

/** A list's filter: ?2 archived, ?3 pinned (0/1), ?4 the folder ('' for none); NULL: any. */
const FILTERED = `(?2 IS NULL OR archived = ?2) AND (?3 IS NULL OR pinned = ?3) AND (?4 IS NULL OR coalesce(folder, '') = ?4)`

const flag = (value: boolean | undefined): number | null => (value === undefined ? null : Number(value))

export class SqliteSessions extends SqliteRole implements SessionStore {
  readonly statements = this.prepare({
    sessionHost: `SELECT ollama_host FROM messages WHERE session_id = ? AND role = 'assistant' AND status != 'streaming'
       ORDER BY created_at DESC, rowid DESC LIMIT 1`,
    sessionMetadata: 'SELECT metadata FROM sessions WHERE id = ?',
    setSessionMetadata: 'UPDATE sessions SET metadata = ? WHERE id = ?',
    settings: 'SELECT settings FROM sessions WHERE id = ? AND owner_id = ?',
    ownerAndSettings: 'SELECT owner_id, settings FROM sessions WHERE id = ?',
    updateSession: 'UPDATE sessions SET title = coalesce(?, title), settings = ?, updated_at = ? WHERE id = ?',
    systemMessage: `SELECT id FROM messages WHERE session_id = ? AND role = 'system'`,
    firstMessageAt: 'SELECT min(created_at) AS at FROM messages WHERE session_id = ?',
    currentMessage: 'SELECT current_message_id FROM sessions WHERE id = ?',
    setSystemContent: 'UPDATE messages SET content = ? WHERE id = ?',
    // The new system message becomes the first of every branch.
    putFirst: 'UPDATE messages SET parent_id = ?1 WHERE session_id = ?2 AND parent_id IS NULL AND id != ?1',
    deleteMessage: 'DELETE FROM messages WHERE id = ?',
    contextCut: 'SELECT context_cut_message_id, context_summary FROM sessions WHERE id = ?',
    setContextCut: 'UPDATE sessions SET context_cut_message_id = ?, context_summary = ? WHERE id = ?',
    // ?2..?4: the filter (NULL: any), ?5 the limit, ?6/?7 where the previous page ended.
    listSessionsFirst: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ?1 AND ${FILTERED} ORDER BY updated_at DESC, id DESC LIMIT ?5`,
    listSessionsAfter: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ?1 AND ${FILTERED} AND (updated_at, id) < (?6, ?7)
       ORDER BY updated_at DESC, id DESC LIMIT ?5`,
    listSessionsByCreationFirst: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ?1 AND ${FILTERED} ORDER BY created_at, id LIMIT ?5`,
    listSessionsByCreationAfter: `SELECT ${SESSION_COLUMNS} FROM sessions WHERE owner_id = ?1 AND ${FILTERED} AND (created_at, id) > (?6, ?7) ORDER BY created_at, id LIMIT ?5`,
    listFolders: `SELECT folder, count(*) AS count FROM sessions WHERE owner_id = ? AND folder IS NOT NULL AND archived = 0 GROUP BY folder ORDER BY folder`,
    organise: `UPDATE sessions SET pinned = coalesce(?2, pinned), archived = coalesce(?3, archived), folder = CASE WHEN ?4 THEN ?5 ELSE folder END WHERE id = ?1`,
  })

  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    const row = this.database.statements.getSession.get(id, ownerId)
    return row && toSession(row)
  }

  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID, settings = {} }: NewSession = {}): Promise<Session> {
    return this.database.transaction(() => {
      const now = timestamp()
      this.database.statements.insertSession.run(id, title, now, now, ownerId, JSON.stringify(settings))
      if (system) this.database.insert(randomUUID(), id, 'system', system, null, 'complete', now)
      return toSession(this.database.statements.getSession.get(id, ownerId)!)
    })
  }

  async updateSession(id: string, ownerId: string, change: SessionChange): Promise<Session | undefined> {
    return this.database.transaction(() => {
      const row = this.statements.settings.get(id, ownerId)
      if (!row) return undefined
      const now = timestamp()
      if (change.system !== undefined) this.setSystem(id, change.system, now)
      if (changesContent(change)) this.statements.updateSession.run(change.title ?? null, JSON.stringify(changedSettings(settingsOf(row.settings), change)), now, id)
      this.statements.organise.run(id, flag(change.pinned), flag(change.archived), Number(change.folder !== undefined), change.folder ?? null)
      return toSession(this.database.statements.getSession.get(id, ownerId)!)
    })
  }

  /** Sets, adds (first, keeping the active path) or removes (its children kept) the session's system message. */
  private setSystem(id: string, system: string | null, now: string): void {
    const existing = this.statements.systemMessage.get(id)
    if (system) {
      if (existing) {
        this.statements.setSystemContent.run(system, existing.id as string)
        return
      }
      const current = this.statements.currentMessage.get(id)!.current_message_id as string | null
      const systemId = randomUUID()
      this.database.insert(systemId, id, 'system', system, null, 'complete', systemMessageTime(this.statements.firstMessageAt.get(id)?.at as string | null, now), { parentId: null })
      this.statements.putFirst.run(systemId, id)
      // The insert made it the leaf; a session with messages keeps the one it had.
      if (current) this.database.statements.setCurrent.run(current, id)
    } else if (existing) {
      // The delete trigger hands its children to its parent (none: they come first) and moves a leaf that was it.
      this.statements.deleteMessage.run(existing.id as string)
    }
  }

  async sessionOwnerAndSettings(id: string): Promise<{ ownerId: string; settings: SessionSettings } | undefined> {
    const row = this.statements.ownerAndSettings.get(id)
    return row && { ownerId: String(row.owner_id), settings: settingsOf(row.settings) }
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

  async listSessions(ownerId: string, limit: number, after: SessionCursor | null, order: SessionOrder = 'updated', filter: SessionFilter = {}): Promise<Page<Session, SessionCursor>> {
    const [first, next] = order === 'created'
      ? [this.statements.listSessionsByCreationFirst, this.statements.listSessionsByCreationAfter]
      : [this.statements.listSessionsFirst, this.statements.listSessionsAfter]
    const filterParams = [flag(filter.archived), flag(filter.pinned), filter.folder === undefined ? null : filter.folder ?? ''] as const
    const rows = after ? next.all(ownerId, ...filterParams, limit + 1, after[0], after[1]) : first.all(ownerId, ...filterParams, limit + 1)
    const items = rows.slice(0, limit).map(toSession)
    const last = items.at(-1)
    const sortKey = order === 'created' ? last?.created_at : last?.updated_at
    return { items, next: rows.length > limit && last ? [sortKey!, last.id] : null }
  }

  async listFolders(ownerId: string): Promise<Folder[]> {
    return this.statements.listFolders.all(ownerId).map((row) => ({ name: String(row.folder), count: Number(row.count) }))
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
