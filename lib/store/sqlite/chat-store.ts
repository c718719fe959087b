import type { DatabaseSync } from 'node:sqlite'
import { adoptRoles } from '../roles.ts'
import type { ChatStore } from '../store.ts'
import { SqliteApprovals } from './approvals.ts'
import { SqliteAttachments } from './attachments.ts'
import { SqliteDatabase, type StoreOptions } from './database.ts'
import { SqliteIdempotency } from './idempotency.ts'
import { SqliteMessages } from './messages.ts'
import { SqliteReplies } from './replies.ts'
import { SqliteSearch } from './search.ts'
import { SqliteSessions } from './sessions.ts'
import { SqliteTransfers } from './transfers.ts'


// Its methods are its roles' (the constructor adopts them): every one of ChatStore.
export interface SqliteChatStore extends ChatStore {}

/**
 * Conversations in one SQLite file: each role of the store (lib/store/*-store.ts) in a file of its
 * own here, over the file they share (database.ts), and all of them as one ChatStore.
 */
export class SqliteChatStore {
  readonly database: SqliteDatabase
  readonly sessions: SqliteSessions
  readonly messages: SqliteMessages
  readonly replies: SqliteReplies
  readonly approvals: SqliteApprovals
  readonly searchIndex: SqliteSearch
  readonly transfers: SqliteTransfers
  readonly idempotency: SqliteIdempotency
  readonly attachments: SqliteAttachments

  constructor(path: string, options: StoreOptions = {}) {
    const database = new SqliteDatabase(path, options)
    this.database = database
    this.sessions = new SqliteSessions(database)
    this.attachments = new SqliteAttachments(database)
    this.messages = new SqliteMessages(database, this.sessions, this.attachments)
    this.replies = new SqliteReplies(database)
    this.approvals = new SqliteApprovals(database)
    this.searchIndex = new SqliteSearch(database)
    this.transfers = new SqliteTransfers(database)
    this.idempotency = new SqliteIdempotency(database)
    adoptRoles(this, this.sessions, this.messages, this.replies, this.approvals, this.searchIndex, this.transfers, this.idempotency, this.attachments)
  }

  get db(): DatabaseSync {
    return this.database.db
  }

  get path(): string {
    return this.database.path
  }

  /** Every statement of every role, by name: for tests that read their query plans. */
  get statements() {
    return {
      ...this.database.statements, ...this.sessions.statements, ...this.messages.statements, ...this.replies.statements, ...this.approvals.statements,
      ...this.searchIndex.statements, ...this.transfers.statements, ...this.idempotency.statements, ...this.attachments.statements,
    }
  }

  ping(): Promise<void> {
    return this.database.ping()
  }

  async close(): Promise<void> {
    await this.searchIndex.close()
    this.database.close()
  }
}
