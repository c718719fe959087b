import { randomUUID } from 'node:crypto'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import { noSuchSession } from '../../shared/problem.ts'
import { DEFAULT_TITLE, LOCAL_USER_ID, titleFromMessage, type ConversationMessage, type FinishedReply, type History, type HistoryEntry, toImage, type ContextCut, toContextCut, cutOnPath, toSearchHit, SEARCH_TEXT_CHARS, type SearchHit, type Message, type MessageCursor, type MessageStatus, type ToolStep, type ApprovalAnswer, type ClaimedReply, type PendingApproval, type PausedReply, decisionOf, toolFieldsOf, toolHistoryOf, toolStepTimes, type NewSession, type Page, type Role, type Session, type SessionCursor, type SessionDeletion, type SessionOrder, type UserTurn, type Branch, type Placement, type IdempotencyClaim, type ImportedConversation, type ImportedMessage, importingOwner, type StoredReply, type ImageInfo, type NewImage, type StoredImage, type IdempotentOutcome, type IdempotentRequest, toIdempotentOutcome } from '../chat-store.ts'
import type { ChatStore } from '../store.ts'
import { bundledMigrations, migrate, type Migration } from '../migrations.ts'
import { ReadWorker } from './search-worker.ts'

/** The server that holds the database (migrations/004_server_lock.sql; `renewed_at` is no longer renewed). */
export interface ServerLockHolder {
  holder: string
  hostname: string
  pid: number
  acquired_at: string
  renewed_at: string
}

export interface StoreOptions {
  migrations?: Migration[]
  busyTimeoutMs?: number
}

/**
 * Everything this service keeps, in one SQLite database. Statements are prepared once; each
 * method is one statement or one short transaction with nothing awaited inside.
 */
/** How many of the newest matches of a search are ranked (docs/api.md "Search"). */
export const SEARCH_WINDOW = 500

/**
 * The newest SEARCH_WINDOW matches of each kind, ranked (bm25 runs per row it returns): a word in
 * most messages costs a window, not the whole index.
 */
const SEARCH_SQL = `SELECT session_id, title, message_id, role, text, created_at FROM (
    SELECT * FROM (
      SELECT s.id AS session_id, s.title, m.id AS message_id, m.role,
        -- COALESCE reads no further than it must: a long message's row only up to its text (023).
        COALESCE(f.head, substr(m.content, 1, ${SEARCH_TEXT_CHARS})) AS text, COALESCE(f.created_at, m.created_at) AS created_at,
        bm25(messages_fts) AS score
      FROM messages_fts f JOIN messages m ON m.rowid = f.rowid JOIN sessions s ON s.id = m.session_id
      WHERE messages_fts MATCH ?1 AND s.owner_id = ?2
      ORDER BY f.rowid DESC LIMIT ${SEARCH_WINDOW})
    UNION ALL
    SELECT * FROM (
      SELECT s.id, s.title, NULL, NULL, s.title, s.created_at, bm25(sessions_fts)
      FROM sessions_fts JOIN sessions s ON s.rowid = sessions_fts.rowid
      WHERE sessions_fts MATCH ?1 AND s.owner_id = ?2
      ORDER BY sessions_fts.rowid DESC LIMIT ${SEARCH_WINDOW}))
  ORDER BY score, created_at DESC, session_id, message_id LIMIT ?3 OFFSET ?4`

/**
 * The path that ends at a leaf: the session's active leaf (?1), or the one given (?3 when ?2 is
 * true; NULL: an empty path), followed up through the parents. UNION: a cycle could only repeat.
 */
const PATH_CTE = `path(id) AS (
    SELECT CASE WHEN ?2 THEN ?3 ELSE current_message_id END FROM sessions WHERE id = ?1
    UNION
    SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id)`

const messageColumnsOf = (table: string) =>
  ['rowid AS seq', 'id', 'role', 'content', 'created_at', 'model', 'tokens_used', 'status', 'parent_id', 'tool_calls', 'tool_call_id', 'tool_name'].map((column) => `${table}.${column}`).join(', ')

export class SqliteChatStore implements ChatStore {
  readonly db: DatabaseSync
  readonly path: string
  private searchWorker: ReadWorker | undefined
  /** Every statement, prepared once; public so tests can check their query plans. */
  readonly statements

  constructor(path: string, { migrations = bundledMigrations(), busyTimeoutMs = 5000 }: StoreOptions = {}) {
    // Conversations are private: a folder made for them and a new database file are the server user's alone
    // (SQLite gives the -wal and -shm files the database file's mode).
    if (path !== ':memory:') {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
      closeSync(openSync(path, 'a', 0o600))
    }
    this.path = path
    this.db = new DatabaseSync(path)
    try {
      this.db.exec(`
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        PRAGMA foreign_keys = ON;
        PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)};
      `)
      migrate(this.db, migrations)
    } catch (error) {
      this.db.close()
      throw error
    }
    const db = this.db
    const sessionColumns = 'id, title, created_at, updated_at, message_count, current_message_id'
    const messageColumns = messageColumnsOf('messages')
    this.statements = {
      ping: db.prepare('SELECT 1'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      getSession: db.prepare(`SELECT ${sessionColumns} FROM sessions WHERE id = ? AND owner_id = ?`),
      sessionOwner: db.prepare('SELECT owner_id FROM sessions WHERE id = ?'),
      sessionForTurn: db.prepare('SELECT title, owner_id FROM sessions WHERE id = ?'),
      sessionHost: db.prepare(
        `SELECT ollama_host FROM messages WHERE session_id = ? AND role = 'assistant' AND status != 'streaming'
         ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      ),
      sessionMetadata: db.prepare('SELECT metadata FROM sessions WHERE id = ?'),
      setSessionMetadata: db.prepare('UPDATE sessions SET metadata = ? WHERE id = ?'),
      getSessionMessage: db.prepare(`SELECT ${messageColumns} FROM messages WHERE id = ? AND session_id = ?`),
      deleteMessage: db.prepare(`DELETE FROM messages WHERE id = ? AND session_id = ? AND status != 'streaming'`),
      listMessagesLast: db.prepare(
        `SELECT ${messageColumns} FROM messages WHERE session_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      ),
      listMessagesBefore: db.prepare(
        `SELECT ${messageColumns} FROM messages WHERE session_id = ? AND (created_at, rowid) < (?, ?)
         ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      ),
      insertSession: db.prepare('INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (?, ?, ?, ?, ?)'),
      renameSession: db.prepare(
        `UPDATE sessions SET title = ?, updated_at = ? WHERE id = ? AND owner_id = ? RETURNING ${sessionColumns}`,
      ),
      setTitle: db.prepare('UPDATE sessions SET title = ? WHERE id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ? AND owner_id = ?'),
      // After the active leaf (the insert trigger then makes it the leaf), unless ?8 places it after ?9.
      insertMessage: db.prepare(
        `INSERT INTO messages (id, session_id, role, content, model, status, created_at, parent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?8 THEN ?9 ELSE (SELECT current_message_id FROM sessions WHERE id = ?2) END)`,
      ),
      insertAttachment: db.prepare(
        `INSERT INTO attachments (id, message_id, response_id, position, media_type, width, height, size, data, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      imagesOf: db.prepare(
        `SELECT id, message_id, media_type, width, height, size FROM attachments
         WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, position`,
      ),
      imagesWithDataOf: db.prepare(
        `SELECT id, message_id, media_type, width, height, size, data FROM attachments
         WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, position`,
      ),
      // Through the message's session, or the response, whichever it belongs to.
      getAttachment: db.prepare(
        `SELECT a.id, a.media_type, a.width, a.height, a.size, a.data FROM attachments a
         LEFT JOIN messages m ON m.id = a.message_id LEFT JOIN sessions s ON s.id = m.session_id
         LEFT JOIN responses r ON r.id = a.response_id
         WHERE a.id = ?1 AND (s.owner_id = ?2 OR r.owner_id = ?2)`,
      ),
      hasRole: db.prepare('SELECT 1 FROM messages WHERE session_id = ? AND role = ? LIMIT 1'),
      // A message without text is sent when it shows images or makes tool calls; a tool result always.
      history: db.prepare(
        `WITH RECURSIVE ${PATH_CTE}
         SELECT m.id, m.role, m.content, m.tool_calls, m.tool_name, (SELECT count(*) FROM attachments a WHERE a.message_id = m.id) AS image_count
         FROM path JOIN messages m ON m.id = path.id
         WHERE m.session_id = ?1 AND (m.content != '' OR image_count > 0 OR m.tool_calls IS NOT NULL OR m.role = 'tool') ORDER BY m.created_at, m.rowid`,
      ),
      childrenOf: db.prepare(
        `SELECT id, parent_id FROM messages
         WHERE session_id = ?1 AND (parent_id IN (SELECT value FROM json_each(?2)) OR (?3 AND parent_id IS NULL))
         ORDER BY created_at, rowid`,
      ),
      // The newest child at each step down from ?2; its last step is the leaf.
      leafBelow: db.prepare(
        `WITH RECURSIVE down(id, depth) AS (
           SELECT id, 0 FROM messages WHERE id = ?2 AND session_id = ?1
           UNION ALL
           SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1), depth + 1
           FROM down WHERE down.id IS NOT NULL)
         SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1`,
      ),
      setCurrent: db.prepare('UPDATE sessions SET current_message_id = ? WHERE id = ?'),
      // Expired keys, and this key's claim when its request died before recording anything.
      forgetIdempotencyKeys: db.prepare(
        `DELETE FROM idempotency_keys WHERE created_at < ?1
           OR (owner_id = ?2 AND key = ?3 AND message_id IS NULL AND status IS NULL AND created_at < ?4)`,
      ),
      claimIdempotencyKey: db.prepare('INSERT INTO idempotency_keys (owner_id, key, fingerprint, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING'),
      getIdempotencyKey: db.prepare('SELECT * FROM idempotency_keys WHERE owner_id = ? AND key = ?'),
      recordIdempotentOutcome: db.prepare(
        `UPDATE idempotency_keys SET session_id = coalesce(?, session_id), message_id = coalesce(?, message_id), status = coalesce(?, status),
           answer = coalesce(?, answer) WHERE owner_id = ? AND key = ?`,
      ),
      releaseIdempotencyKey: db.prepare('DELETE FROM idempotency_keys WHERE owner_id = ? AND key = ?'),
      importedFrom: db.prepare('SELECT 1 FROM import_sources WHERE owner_id = ? AND source_id = ?'),
      recordImport: db.prepare('INSERT INTO import_sources (owner_id, source_id, session_id) VALUES (?, ?, ?)'),
      finishImport: db.prepare('UPDATE sessions SET owner_id = ?, current_message_id = ?, updated_at = ? WHERE id = ?'),
      dropImports: db.prepare('DELETE FROM sessions WHERE owner_id = ?'),
      search: db.prepare(SEARCH_SQL),
      contextCut: db.prepare('SELECT context_cut_message_id, context_summary FROM sessions WHERE id = ?'),
      setContextCut: db.prepare('UPDATE sessions SET context_cut_message_id = ?, context_summary = ? WHERE id = ?'),
      getMessage: db.prepare(`SELECT ${messageColumns} FROM messages WHERE id = ?`),
      getReply: db.prepare(`SELECT ${messageColumns}, prompt_tokens, done_reason, event_count FROM messages WHERE id = ?`),
      getStreamingReply: db.prepare(`SELECT ${messageColumns} FROM messages WHERE session_id = ? AND status = 'streaming' LIMIT 1`),
      getOwnedMessage: db.prepare(
        `SELECT ${messageColumnsOf('m')}
         FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ? AND s.owner_id = ?`,
      ),
      discardReply: db.prepare(`DELETE FROM messages WHERE id = ? AND status = 'streaming' AND content = ''`),
      // Before the reply goes: the delete trigger then leaves a leaf that is no longer the reply alone.
      restoreLeaf: db.prepare(
        `UPDATE sessions SET current_message_id = ?1
         WHERE id = (SELECT session_id FROM messages WHERE id = ?2 AND status = 'streaming' AND content = '')`,
      ),
      currentLeaf: db.prepare('SELECT current_message_id FROM sessions WHERE id = ?'),
      checkpoint: db.prepare(`UPDATE messages SET content = ? WHERE id = ? AND status = 'streaming'`),
      streamingReplyPlace: db.prepare(`SELECT session_id, parent_id, created_at FROM messages WHERE id = ? AND status = 'streaming'`),
      insertToolMessage: db.prepare(
        `INSERT INTO messages (id, session_id, role, content, model, status, created_at, parent_id, tool_calls, tool_call_id, tool_name)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      moveReply: db.prepare(`UPDATE messages SET parent_id = ?, created_at = ?, content = '' WHERE id = ?`),
      insertApproval: db.prepare(
        `INSERT INTO tool_approvals (call_id, session_id, reply_id, name, arguments, turn, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      pauseReply: db.prepare(`UPDATE messages SET status = 'awaiting_approval', event_count = ? WHERE id = ?`),
      approvalOf: db.prepare(
        `SELECT a.reply_id, a.decision, a.expires_at, s.owner_id FROM tool_approvals a JOIN sessions s ON s.id = a.session_id WHERE a.call_id = ? AND a.session_id = ?`,
      ),
      decideApproval: db.prepare('UPDATE tool_approvals SET decision = ?, decided_at = ? WHERE call_id = ?'),
      undecidedOf: db.prepare('SELECT count(*) AS n FROM tool_approvals WHERE reply_id = ? AND decision IS NULL'),
      expireApprovals: db.prepare(`UPDATE tool_approvals SET decision = 'denied', decided_at = expires_at WHERE decision IS NULL AND expires_at <= ? RETURNING reply_id, session_id`),
      nextApprovalExpiry: db.prepare('SELECT min(expires_at) AS at FROM tool_approvals WHERE decision IS NULL'),
      // Only a paused reply's rows still hold its turn (a claim clears it): a few rows, not every approval ever made.
      answeredReplies: db.prepare(
        `SELECT DISTINCT a.reply_id, a.session_id FROM tool_approvals a JOIN messages m ON m.id = a.reply_id AND m.status = 'awaiting_approval'
         WHERE a.turn != '' AND NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = a.reply_id AND p.decision IS NULL)`,
      ),
      pausedReply: db.prepare(
        `SELECT m.session_id, m.model, m.event_count, m.created_at, s.owner_id FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ? AND m.status = 'awaiting_approval'`,
      ),
      approvalsOf: db.prepare('SELECT call_id, name, arguments, turn, decision, decided_at, expires_at FROM tool_approvals WHERE reply_id = ? ORDER BY rowid'),
      resumeReply: db.prepare(`UPDATE messages SET status = 'streaming' WHERE id = ?`),
      clearTurn: db.prepare(`UPDATE tool_approvals SET turn = '' WHERE reply_id = ?`),
      pendingApprovals: db.prepare(
        'SELECT call_id, name, arguments, reply_id, expires_at FROM tool_approvals WHERE session_id = ? AND decision IS NULL ORDER BY created_at, rowid',
      ),
      finish: db.prepare(
        `UPDATE messages SET content = ?, status = ?, tokens_used = ?, prompt_tokens = ?, done_reason = ?, ollama_host = ?, event_count = ?
         WHERE id = ? AND status = 'streaming'`,
      ),
      getLock: db.prepare('SELECT holder, hostname, pid, acquired_at, renewed_at FROM server_lock WHERE id = 1'),
      putLock: db.prepare(
        `INSERT OR REPLACE INTO server_lock (id, holder, hostname, pid, acquired_at, renewed_at) VALUES (1, ?, ?, ?, ?, ?)`,
      ),
      releaseLock: db.prepare('DELETE FROM server_lock WHERE id = 1 AND holder = ?'),
      interruptStreaming: db.prepare(`UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'`),
      listSessionsFirst: db.prepare(
        `SELECT ${sessionColumns} FROM sessions WHERE owner_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?`,
      ),
      listSessionsAfter: db.prepare(
        `SELECT ${sessionColumns} FROM sessions WHERE owner_id = ? AND (updated_at, id) < (?, ?)
         ORDER BY updated_at DESC, id DESC LIMIT ?`,
      ),
      listSessionsByCreationFirst: db.prepare(
        `SELECT ${sessionColumns} FROM sessions WHERE owner_id = ? ORDER BY created_at, id LIMIT ?`,
      ),
      listSessionsByCreationAfter: db.prepare(
        `SELECT ${sessionColumns} FROM sessions WHERE owner_id = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`,
      ),
      listMessagesFirst: db.prepare(
        `SELECT ${messageColumns} FROM messages WHERE session_id = ? ORDER BY created_at, rowid LIMIT ?`,
      ),
      listMessagesAfter: db.prepare(
        `SELECT ${messageColumns} FROM messages WHERE session_id = ? AND (created_at, rowid) > (?, ?)
         ORDER BY created_at, rowid LIMIT ?`,
      ),
    } satisfies Record<string, StatementSync>
  }

  /** Throws when the database cannot answer. */
  async ping(): Promise<void> {
    this.statements.ping.get()
  }

  async claimIdempotencyKey({ ownerId, key, fingerprint, expiredBefore, staleBefore }: IdempotentRequest): Promise<IdempotencyClaim> {
    return this.transaction((): IdempotencyClaim => {
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

  private isImported(ownerId: string, conversation: ImportedConversation): boolean {
    const { sameAsSession } = conversation
    return Boolean(this.statements.importedFrom.get(ownerId, conversation.sourceId) || (sameAsSession && this.statements.getSession.get(sameAsSession, ownerId)))
  }

  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<string | 'duplicate'> {
    if (this.isImported(ownerId, conversation)) return 'duplicate'
    const sessionId = randomUUID()
    this.statements.insertSession.run(sessionId, conversation.title, conversation.createdAt, conversation.createdAt, importingOwner(null))
    return sessionId
  }

  async addImportedMessages(sessionId: string, messages: ImportedMessage[]): Promise<void> {
    this.transaction(() => {
      for (const message of messages) {
        if (message.toolCalls || message.callId) {
          const { id, role, content, model, status, createdAt, parentId, toolCalls, callId, toolName } = message
          this.statements.insertToolMessage.run(id, sessionId, role, content, model, status, createdAt, parentId, toolCalls ? JSON.stringify(toolCalls) : null, callId ?? null, toolName ?? null)
        } else {
          this.insert(message.id, sessionId, message.role, message.content, message.model, message.status, message.createdAt, { parentId: message.parentId }, message.images)
        }
      }
    })
  }

  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    return this.transaction(() => {
      if (this.isImported(ownerId, conversation)) {
        this.statements.deleteSession.run(sessionId, importingOwner(null))
        return 'duplicate'
      }
      this.statements.finishImport.run(ownerId, currentId, conversation.updatedAt, sessionId)
      this.statements.recordImport.run(ownerId, conversation.sourceId, sessionId)
      return 'imported'
    })
  }

  async discardImport(sessionId: string): Promise<void> {
    this.statements.deleteSession.run(sessionId, importingOwner(null))
  }

  async dropUnfinishedImports(): Promise<number> {
    return Number(this.statements.dropImports.run(importingOwner(null)).changes)
  }

  /** The session when it exists and belongs to `ownerId`; someone else's is as absent as a missing one. */
  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    const row = this.statements.getSession.get(id, ownerId)
    return row && toSession(row)
  }

  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID }: NewSession = {}): Promise<Session> {
    return this.transaction(() => {
      const now = timestamp()
      this.statements.insertSession.run(id, title, now, now, ownerId)
      if (system) this.insert(randomUUID(), id, 'system', system, null, 'complete', now)
      return toSession(this.statements.getSession.get(id, ownerId)!)
    })
  }

  async renameSession(id: string, ownerId: string, title: string): Promise<Session | undefined> {
    const row = this.statements.renameSession.get(title, timestamp(), id, ownerId)
    return row && toSession(row)
  }

  async deleteSession(id: string, ownerId: string): Promise<SessionDeletion> {
    return this.transaction(() => {
      if (this.statements.getStreamingReply.get(id)) return this.statements.sessionOwner.get(id)?.owner_id === ownerId ? 'busy' : 'missing'
      return Number(this.statements.deleteSession.run(id, ownerId).changes) > 0 ? 'deleted' : 'missing'
    })
  }

  /** Who owns the session, when it exists (for refusing someone else's id before anything else). */
  async sessionOwner(id: string): Promise<string | undefined> {
    const row = this.statements.sessionOwner.get(id)
    return row && String(row.owner_id)
  }

  /** The Ollama host the session's last finished reply ran on, if any. */
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

  /** A session's messages, oldest first (or newest first, OpenAI's default for conversation items), a page at a time. */
  async listMessages(sessionId: string, limit: number, after: MessageCursor | null, order: 'asc' | 'desc' = 'asc', branch: Branch = 'active'): Promise<Page<Message, MessageCursor>> {
    const rows = branch === 'active'
      ? this.activePathPage(order, after !== null).all(sessionId, 0, null, ...(after ?? []), limit + 1)
      : order === 'asc'
        ? after ? this.statements.listMessagesAfter.all(sessionId, after[0], after[1], limit + 1) : this.statements.listMessagesFirst.all(sessionId, limit + 1)
        : after ? this.statements.listMessagesBefore.all(sessionId, after[0], after[1], limit + 1) : this.statements.listMessagesLast.all(sessionId, limit + 1)
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const items = page.map(toMessage)
    const images = await this.imagesOf(items.map((message) => message.id))
    for (const message of items) message.images = images.get(message.id) ?? []
    return { items, next: rows.length > limit && last ? [String(last.created_at), Number(last.seq)] : null }
  }

  async imagesOf(messageIds: string[], withData: true): Promise<Map<string, StoredImage[]>>
  async imagesOf(messageIds: string[], withData?: false): Promise<Map<string, ImageInfo[]>>
  async imagesOf(messageIds: string[], withData = false): Promise<Map<string, ImageInfo[]>> {
    const images = new Map<string, ImageInfo[]>()
    if (messageIds.length === 0) return images
    const statement = withData ? this.statements.imagesWithDataOf : this.statements.imagesOf
    for (const row of statement.all(JSON.stringify(messageIds))) {
      const messageId = String(row.message_id)
      images.set(messageId, [...(images.get(messageId) ?? []), toImage(row)])
    }
    return images
  }

  async getAttachment(id: string, ownerId: string): Promise<StoredImage | undefined> {
    const row = this.statements.getAttachment.get(id, ownerId)
    return row && (toImage(row) as StoredImage)
  }

  private readonly pathPages = new Map<string, StatementSync>()

  /** A page of the active path (parameters: the path's three, then the cursor if any, then the limit). */
  private activePathPage(order: 'asc' | 'desc', withCursor: boolean): StatementSync {
    const key = `${order}:${withCursor}`
    let statement = this.pathPages.get(key)
    if (!statement) {
      const direction = order === 'asc' ? '' : ' DESC'
      const cursor = withCursor ? `AND (m.created_at, m.rowid) ${order === 'asc' ? '>' : '<'} (?4, ?5)` : ''
      statement = this.db.prepare(
        `WITH RECURSIVE ${PATH_CTE}
         SELECT ${messageColumnsOf('m')} FROM path JOIN messages m ON m.id = path.id
         WHERE m.session_id = ?1 ${cursor} ORDER BY m.created_at${direction}, m.rowid${direction} LIMIT ?${withCursor ? 6 : 4}`,
      )
      this.pathPages.set(key, statement)
    }
    return statement
  }

  async childrenOf(sessionId: string, parentIds: Array<string | null>): Promise<Map<string | null, string[]>> {
    const children = new Map<string | null, string[]>()
    const rows = this.statements.childrenOf.all(sessionId, JSON.stringify(parentIds.filter((id) => id !== null)), parentIds.includes(null) ? 1 : 0)
    for (const row of rows) {
      const parent = row.parent_id == null ? null : String(row.parent_id)
      children.set(parent, [...(children.get(parent) ?? []), String(row.id)])
    }
    return children
  }

  async setCurrentMessage(sessionId: string, messageId: string): Promise<{ currentMessageId: string } | 'missing' | 'busy'> {
    return this.transaction(() => {
      const leaf = this.statements.leafBelow.get(sessionId, messageId)
      if (!leaf) return 'missing'
      if (this.statements.getStreamingReply.get(sessionId)) return 'busy'
      this.statements.setCurrent.run(String(leaf.id), sessionId)
      return { currentMessageId: String(leaf.id) }
    })
  }

  async getMessage(id: string): Promise<Message | undefined> {
    const row = this.statements.getMessage.get(id)
    return row && toMessage(row)
  }

  async getReply(id: string): Promise<StoredReply | undefined> {
    const row = this.statements.getReply.get(id)
    const numberOrNull = (value: unknown) => (value == null ? null : Number(value))
    return row && { ...toMessage(row), prompt_tokens: numberOrNull(row.prompt_tokens), done_reason: row.done_reason == null ? null : String(row.done_reason), event_count: numberOrNull(row.event_count) }
  }

  async streamingReply(sessionId: string): Promise<Message | undefined> {
    const row = this.statements.getStreamingReply.get(sessionId)
    return row && toMessage(row)
  }

  /** A message of any of `ownerId`'s sessions; someone else's is as absent as a missing one. */
  async getOwnedMessage(id: string, ownerId: string): Promise<Message | undefined> {
    const row = this.statements.getOwnedMessage.get(id, ownerId)
    return row && toMessage(row)
  }

  /**
   * Stores a user's message in one transaction: the session (created, with the client's id when it
   * gave one), the system prompt when the session has none, the message, and the title taken from
   * the first user message of a session still called `New Chat`.
   */
  async addUserMessage(turn: UserTurn): Promise<{ userMessageId: string }> {
    return this.transaction(() => this.insertUserMessage(turn, timestamp()))
  }

  /**
   * A user's message and the assistant reply that will answer it, stored `streaming` and empty,
   * in one transaction: a generation needs no further write before its first token.
   */
  async beginTurn(turn: UserTurn & { model: string }): Promise<{ userMessageId: string; reply: { id: string; createdAt: string }; newSession: boolean }> {
    return this.transaction(() => {
      const now = timestamp()
      const { userMessageId, newSession } = this.insertUserMessage(turn, now)
      const reply = { id: randomUUID(), createdAt: now }
      this.insert(reply.id, turn.sessionId, 'assistant', '', turn.model, 'streaming', now)
      return { userMessageId, reply, newSession }
    })
  }

  async beginReply(sessionId: string, parentId: string | null, model: string): Promise<{ id: string; createdAt: string; leafBefore: string | null }> {
    return this.transaction(() => {
      const leafBefore = (this.statements.currentLeaf.get(sessionId)?.current_message_id as string | null | undefined) ?? null
      const reply = { id: randomUUID(), createdAt: timestamp(), leafBefore }
      this.insert(reply.id, sessionId, 'assistant', '', model, 'streaming', reply.createdAt, { parentId })
      return reply
    })
  }

  /** One message, after the active leaf unless `placement` says where; it becomes the active leaf. */
  private insert(id: string, sessionId: string, role: Role, content: string, model: string | null, status: MessageStatus, now: string, placement: Placement = {}, images: NewImage[] = []): void {
    const placed = placement.parentId !== undefined
    this.statements.insertMessage.run(id, sessionId, role, content, model, status, now, placed ? 1 : 0, placement.parentId ?? null)
    for (const [position, image] of images.entries()) {
      this.statements.insertAttachment.run(image.id ?? randomUUID(), id, null, position, image.mediaType, image.width, image.height, image.data.byteLength, image.data, now)
    }
  }

  /**
   * A response's input (OpenAI's Responses API, in a conversation) and the assistant reply that
   * will answer it, stored `streaming` and empty, in one transaction. Returns the reply's id.
   */
  async addResponseTurn(sessionId: string, ownerId: string, messages: ConversationMessage[], model: string): Promise<string> {
    return this.transaction(() => {
      const now = timestamp()
      this.insertMessages(sessionId, ownerId, messages, now)
      const replyId = randomUUID()
      this.insert(replyId, sessionId, 'assistant', '', model, 'streaming', now)
      return replyId
    })
  }

  /** Appends messages (OpenAI conversation items) to a session, in one transaction; their ids in order. */
  async appendMessages(sessionId: string, ownerId: string, messages: ConversationMessage[]): Promise<string[]> {
    return this.transaction(() => this.insertMessages(sessionId, ownerId, messages, timestamp()))
  }

  private insertMessages(sessionId: string, ownerId: string, messages: ConversationMessage[], now: string): string[] {
    // The first user message checks the owner and may name the session; the rest are plain inserts.
    let userSeen = false
    return messages.map(({ role, content, images }) => {
      if (role === 'user' && !userSeen) {
        userSeen = true
        return this.insertUserMessage({ sessionId, ownerId, content, images }, now).userMessageId
      }
      const id = randomUUID()
      this.insert(id, sessionId, role, content, null, 'complete', now, {}, images)
      return id
    })
  }

  /** A message of the session, for a conversation's item routes. */
  async getSessionMessage(sessionId: string, messageId: string): Promise<(Message & { seq: number }) | undefined> {
    const row = this.statements.getSessionMessage.get(messageId, sessionId)
    return row && { ...toMessage(row), seq: Number(row.seq) }
  }

  /** Removes a message that is not being generated; false when the session has no such message. */
  async deleteMessage(sessionId: string, messageId: string): Promise<boolean> {
    return Number(this.statements.deleteMessage.run(messageId, sessionId).changes) > 0
  }

  async sessionMetadata(id: string): Promise<Record<string, string>> {
    const row = this.statements.sessionMetadata.get(id)
    return row?.metadata == null ? {} : (JSON.parse(String(row.metadata)) as Record<string, string>)
  }

  async setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    this.statements.setSessionMetadata.run(JSON.stringify(metadata), id)
  }

  /** Removes a reply that never started (Ollama refused before its first token). */
  async discardReply(id: string, leafAfter?: string | null): Promise<void> {
    this.transaction(() => {
      if (leafAfter !== undefined) this.statements.restoreLeaf.run(leafAfter, id)
      this.statements.discardReply.run(id)
    })
  }

  private insertUserMessage({ sessionId, ownerId, content, system, parentId, images }: UserTurn, now: string): { userMessageId: string; newSession: boolean } {
    const session = this.statements.sessionForTurn.get(sessionId)
    if (session && session.owner_id !== ownerId) throw noSuchSession(sessionId)
    // A session made by this turn has no messages yet: nothing to look up before inserting.
    if (!session) this.statements.insertSession.run(sessionId, DEFAULT_TITLE, now, now, ownerId)
    // An edit (placed after a given parent) keeps the session's beginning as it is.
    if (system && parentId === undefined && (!session || !this.statements.hasRole.get(sessionId, 'system'))) {
      this.insert(randomUUID(), sessionId, 'system', system, null, 'complete', now)
    }
    // Only a session still called New Chat can take its title from this message.
    const namesSession = !session || (session.title === DEFAULT_TITLE && !this.statements.hasRole.get(sessionId, 'user'))
    const userMessageId = randomUUID()
    this.insert(userMessageId, sessionId, 'user', content, null, 'complete', now, { parentId }, images)
    if (namesSession) this.statements.setTitle.run(titleFromMessage(content), sessionId)
    return { userMessageId, newSession: !session }
  }

  async history(sessionId: string, leafId?: string | null): Promise<History> {
    const rows = this.statements.history.all(sessionId, leafId === undefined ? 0 : 1, leafId ?? null)
    const messages: HistoryEntry[] = rows.map((row) => ({
      id: String(row.id), role: row.role as Role, content: String(row.content), ...(Number(row.image_count) ? { imageCount: Number(row.image_count) } : {}), ...toolHistoryOf(row),
    }))
    return { messages, cut: cutOnPath(await this.contextCut(sessionId), messages) }
  }

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    // Each word quoted (data, never query syntax) and a prefix; FTS5 ANDs them.
    const match = words.map((word) => `"${word}"*`).join(' ')
    // A file is searched off the event loop; an in-memory database has no second connection.
    if (this.path === ':memory:') return this.statements.search.all(match, ownerId, limit, offset).map(toSearchHit)
    this.searchWorker ??= new ReadWorker(this.path, SEARCH_SQL)
    return (await this.searchWorker.all(match, ownerId, limit, offset)).map(toSearchHit)
  }

  async contextCut(sessionId: string): Promise<ContextCut | null> {
    return toContextCut(this.statements.contextCut.get(sessionId))
  }

  async setContextCut(sessionId: string, cut: ContextCut): Promise<void> {
    this.statements.setContextCut.run(cut.messageId, cut.summary, sessionId)
  }

  async addToolStep(replyId: string, { calls, results, awaiting }: ToolStep): Promise<string | null> {
    return this.transaction(() => {
      const reply = this.statements.streamingReplyPlace.get(replyId)
      if (!reply) return null
      const sessionId = String(reply.session_id)
      const times = toolStepTimes(String(reply.created_at), timestamp())
      let parentId = reply.parent_id == null ? null : String(reply.parent_id)
      const add = (role: Role, content: string, model: string | null, status: MessageStatus, toolCalls: string | null, callId: string | null, toolName: string | null) => {
        const id = randomUUID()
        this.statements.insertToolMessage.run(id, sessionId, role, content, model, status, times.step, parentId, toolCalls, callId, toolName)
        parentId = id
      }
      if (calls) add('assistant', calls.content, calls.model, 'complete', JSON.stringify(calls.toolCalls), null, null)
      for (const result of results) add('tool', result.content, null, result.ok ? 'complete' : 'error', null, result.callId, result.name)
      this.statements.moveReply.run(parentId, times.reply, replyId)
      // The inserts made each of them the leaf; the reply is.
      this.statements.setCurrent.run(replyId, sessionId)
      if (awaiting) {
        // The turn's state once, with the first call: it holds every earlier result of the turn.
        for (const [index, call] of awaiting.calls.entries()) {
          this.statements.insertApproval.run(call.call_id, sessionId, replyId, call.name, JSON.stringify(call.arguments), index === 0 ? awaiting.turn : '', times.step, awaiting.expiresAt)
        }
        this.statements.pauseReply.run(awaiting.events, replyId)
      }
      return times.reply
    })
  }

  async answerApproval(sessionId: string, ownerId: string, callId: string, approve: boolean, now: string): Promise<ApprovalAnswer> {
    return this.transaction((): ApprovalAnswer => {
      const row = this.statements.approvalOf.get(callId, sessionId)
      if (!row || row.owner_id !== ownerId) return 'missing'
      if (row.decision !== null || String(row.expires_at) <= now) return 'answered'
      this.statements.decideApproval.run(approve ? 'approved' : 'denied', now, callId)
      const replyId = String(row.reply_id)
      return { replyId, remaining: Number(this.statements.undecidedOf.get(replyId)!.n) }
    })
  }

  async expireApprovals(now: string): Promise<PausedReply[]> {
    return this.transaction(() => {
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
    return this.transaction(() => {
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

  /** Saves a streaming reply's text so far; false when no streaming reply has that id. */
  async checkpointReply(id: string, content: string): Promise<boolean> {
    return Number(this.statements.checkpoint.run(content, id).changes) > 0
  }

  /** Finalises a streaming reply; false (and nothing written) when no streaming reply has that id. */
  async finishReply(id: string, reply: FinishedReply): Promise<boolean> {
    const params: SQLInputValue[] = [
      reply.content,
      reply.status,
      reply.tokensUsed ?? null,
      reply.promptTokens ?? null,
      reply.doneReason ?? null,
      reply.host ?? null,
      reply.events ?? null,
      id,
    ]
    return Number(this.statements.finish.run(...params).changes) > 0
  }

  /** Replies a crash left `streaming` become `interrupted`, with their last checkpointed text. */
  async interruptStreamingReplies(): Promise<number> {
    return Number(this.statements.interruptStreaming.run().changes)
  }

  /** Who holds the server lock, as its holder recorded itself. */
  serverLockHolder(): ServerLockHolder | undefined {
    const row = this.statements.getLock.get()
    return row && ({ ...row } as unknown as ServerLockHolder)
  }

  /**
   * Records `holder` as the server on this database (lib/store/server-lock.ts holds the lock itself);
   * returns the row a server that died without releasing left, if any.
   */
  recordServerLock(holder: { holder: string; hostname: string; pid: number }): ServerLockHolder | undefined {
    return this.transaction(() => {
      const left = this.serverLockHolder()
      const now = timestamp()
      this.statements.putLock.run(holder.holder, holder.hostname, holder.pid, now, now)
      return left
    })
  }

  releaseServerLock(holder: string): void {
    this.statements.releaseLock.run(holder)
  }

  async close(): Promise<void> {
    await this.searchWorker?.close()
    if (this.db.isOpen) this.db.close()
  }

  /** Runs `work` in one write transaction, rolled back if it throws; nothing may be awaited inside. */
  private transaction<T>(work: () => T): T {
    // Prepared once: exec() would parse the SQL on every turn of the hot path.
    this.statements.begin.run()
    try {
      const result = work()
      this.statements.commit.run()
      return result
    } catch (error) {
      if (this.db.isTransaction) this.statements.rollback.run()
      throw error
    }
  }
}

type Row = Record<string, SQLInputValue>

function toSession(row: Row): Session {
  return {
    id: String(row.id),
    title: String(row.title),
    created_at: String(row.created_at),
    updated_at: String(row.updated_at),
    message_count: Number(row.message_count),
    current_message_id: row.current_message_id == null ? null : String(row.current_message_id),
  }
}

function toMessage(row: Row): Message {
  return {
    id: String(row.id),
    role: row.role as Role,
    content: String(row.content),
    created_at: String(row.created_at),
    ...(row.model == null ? {} : { model: String(row.model) }),
    ...(row.tokens_used == null ? {} : { tokens_used: Number(row.tokens_used) }),
    status: row.status as MessageStatus,
    parent_id: row.parent_id == null ? null : String(row.parent_id),
    ...toolFieldsOf(row),
  }
}
