import { randomUUID } from 'node:crypto'
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import { noSuchSession } from '../../shared/problem.ts'
import { DEFAULT_TITLE, titleFromMessage, type ConversationMessage, type MessageStatus, type NewImage, type Placement, type Role, type UserTurn } from '../chat-store.ts'
import { bundledMigrations, migrate, type Migration } from '../migrations.ts'
import { MESSAGE_COLUMNS, SESSION_COLUMNS } from './rows.ts'

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
 * The SQLite file, opened and migrated, with what the roles of the store (lib/store/sqlite/*.ts)
 * share: the statements more than one of them runs, the writes of a message and of a user's turn,
 * and transactions. Statements are prepared once; each role's method is one statement or one
 * short transaction with nothing awaited inside.
 */
export class SqliteDatabase {
  readonly db: DatabaseSync
  readonly path: string
  /** The statements more than one role runs; public so tests can check their query plans. */
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
    this.statements = {
      ping: db.prepare('SELECT 1'),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      // With its system prompt (idx_messages_system finds it without a scan of the session's messages).
      getSession: db.prepare(`SELECT ${SESSION_COLUMNS}, (SELECT content FROM messages WHERE session_id = sessions.id AND role = 'system') AS system
        FROM sessions WHERE id = ? AND owner_id = ?`),
      sessionOwner: db.prepare('SELECT owner_id FROM sessions WHERE id = ?'),
      sessionForTurn: db.prepare('SELECT title, owner_id FROM sessions WHERE id = ?'),
      insertSession: db.prepare(`INSERT INTO sessions (id, title, created_at, updated_at, owner_id, settings) VALUES (?, ?, ?, ?, ?, ?)`),
      setTitle: db.prepare('UPDATE sessions SET title = ? WHERE id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ? AND owner_id = ?'),
      setCurrent: db.prepare('UPDATE sessions SET current_message_id = ? WHERE id = ?'),
      // After the active leaf (the insert trigger then makes it the leaf), unless ?8 places it after ?9.
      insertMessage: db.prepare(
        `INSERT INTO messages (id, session_id, role, content, model, status, created_at, parent_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?8 THEN ?9 ELSE (SELECT current_message_id FROM sessions WHERE id = ?2) END)`,
      ),
      insertToolMessage: db.prepare(
        `INSERT INTO messages (id, session_id, role, content, model, status, created_at, parent_id, tool_calls, tool_call_id, tool_name, thinking)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertAttachment: db.prepare(
        `INSERT INTO attachments (id, message_id, response_id, position, media_type, width, height, size, data, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      hasRole: db.prepare('SELECT 1 FROM messages WHERE session_id = ? AND role = ? LIMIT 1'),
      getStreamingReply: db.prepare(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND status = 'streaming' LIMIT 1`),
      getLock: db.prepare('SELECT holder, hostname, pid, acquired_at, renewed_at FROM server_lock WHERE id = 1'),
      putLock: db.prepare(
        `INSERT OR REPLACE INTO server_lock (id, holder, hostname, pid, acquired_at, renewed_at) VALUES (1, ?, ?, ?, ?, ?)`,
      ),
      releaseLock: db.prepare('DELETE FROM server_lock WHERE id = 1 AND holder = ?'),
    } satisfies Record<string, StatementSync>
  }

  /** Throws when the database cannot answer. */
  async ping(): Promise<void> {
    this.statements.ping.get()
  }

  /** Runs `work` in one write transaction, rolled back if it throws; nothing may be awaited inside. */
  transaction<T>(work: () => T): T {
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

  /** One message, after the active leaf unless `placement` says where; it becomes the active leaf. */
  insert(id: string, sessionId: string, role: Role, content: string, model: string | null, status: MessageStatus, now: string, placement: Placement = {}, images: NewImage[] = []): void {
    const placed = placement.parentId !== undefined
    this.statements.insertMessage.run(id, sessionId, role, content, model, status, now, placed ? 1 : 0, placement.parentId ?? null)
    for (const [position, image] of images.entries()) {
      this.statements.insertAttachment.run(image.id ?? randomUUID(), id, null, position, image.mediaType, image.width, image.height, image.data.byteLength, image.data, now)
    }
  }

  /**
   * A user's message, inside a transaction: the session (created, with the client's id when it
   * gave one), the system prompt when the session has none, the message, and the title taken from
   * the first user message of a session still called `New Chat`.
   */
  insertUserMessage({ sessionId, ownerId, content, system, settings, parentId, images }: UserTurn, now: string): { userMessageId: string; newSession: boolean } {
    const session = this.statements.sessionForTurn.get(sessionId)
    if (session && session.owner_id !== ownerId) throw noSuchSession(sessionId)
    // A session made by this turn has no messages yet: nothing to look up before inserting, and
    // it is named by this message as it is made (one write of its row and its search entry).
    if (!session) this.statements.insertSession.run(sessionId, titleFromMessage(content), now, now, ownerId, JSON.stringify(settings ?? {}))
    // An edit (placed after a given parent) keeps the session's beginning as it is.
    if (system && parentId === undefined && (!session || !this.statements.hasRole.get(sessionId, 'system'))) {
      this.insert(randomUUID(), sessionId, 'system', system, null, 'complete', now)
    }
    // Only a session still called New Chat can take its title from this message.
    const namesSession = session !== undefined && session.title === DEFAULT_TITLE && !this.statements.hasRole.get(sessionId, 'user')
    const userMessageId = randomUUID()
    this.insert(userMessageId, sessionId, 'user', content, null, 'complete', now, { parentId }, images)
    if (namesSession) this.statements.setTitle.run(titleFromMessage(content), sessionId)
    return { userMessageId, newSession: !session }
  }

  /** OpenAI conversation items, inside a transaction; their ids in order. */
  insertMessages(sessionId: string, ownerId: string, messages: ConversationMessage[], now: string): string[] {
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

  /** Who holds the server lock, as its holder recorded itself. */
  serverLockHolder(): ServerLockHolder | undefined {
    const row = this.statements.getLock.get()
    return row && ({ ...row } as unknown as ServerLockHolder)
  }

  /**
   * Records `holder` as the server on this database (lib/store/sqlite/server-lock.ts holds the lock
   * itself); returns the row a server that died without releasing left, if any.
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

  close(): void {
    if (this.db.isOpen) this.db.close()
  }
}

/** What each role of the store is made on: the shared file, and its own statements, prepared once. */
export abstract class SqliteRole {
  protected readonly database: SqliteDatabase

  constructor(database: SqliteDatabase) {
    this.database = database
  }

  /** Each of `texts` prepared; a role keeps them as `statements`, public so tests can check their query plans. */
  protected prepare<K extends string>(texts: Record<K, string>): Record<K, StatementSync> {
    const statements = {} as Record<K, StatementSync>
    for (const name of Object.keys(texts) as K[]) statements[name] = this.database.db.prepare(texts[name])
    return statements
  }
}
