import type { ClusterMember } from '../cluster.ts'
import type { Store } from '../store.ts'
import { SqliteAccessStore } from './access-store.ts'
import { SqliteChatStore } from './chat-store.ts'
import type { StoreOptions } from './database.ts'
import { SqliteResponseStore } from './response-store.ts'
import { SqliteDocuments } from './documents.ts'
import { SqlitePrompts } from './prompts.ts'
import { SqliteShares } from './shares.ts'
import { SqliteInputs } from './inputs.ts'
import { SqliteMcpAuth } from './mcp-auth.ts'
import { acquireServerLock } from './server-lock.ts'

/** The embedded default: one SQLite file (or `:memory:`), opened and migrated here. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly chats: SqliteChatStore
  readonly access: SqliteAccessStore
  readonly responses: SqliteResponseStore
  readonly documents: SqliteDocuments
  readonly prompts: SqlitePrompts
  readonly shares: SqliteShares
  readonly inputs: SqliteInputs
  readonly mcpAuth: SqliteMcpAuth
  /** One server per file: nothing to share with other instances. */
  readonly cluster = null

  constructor(path: string, options: StoreOptions = {}) {
    this.chats = new SqliteChatStore(path, options)
    this.access = new SqliteAccessStore(this.chats.db)
    this.responses = new SqliteResponseStore(this.chats.db)
    this.documents = new SqliteDocuments(this.chats.database)
    this.prompts = new SqlitePrompts(this.chats.database)
    this.shares = new SqliteShares(this.chats.database)
    this.inputs = new SqliteInputs(this.chats.database)
    this.mcpAuth = new SqliteMcpAuth(this.chats.database)
  }

  get path(): string {
    return this.chats.path
  }

  get db() {
    return this.chats.db
  }

  /** SQLite's exclusive lock on `<DB_PATH>.lock` (lib/store/sqlite/server-lock.ts); nothing to claim in memory. */
  async join({ log }: ClusterMember): Promise<{ release(): Promise<void> }> {
    const lock = this.path === ':memory:' ? undefined : acquireServerLock(this.chats.database, log)
    return { release: async () => lock?.release() }
  }

  ping(): Promise<void> {
    return this.chats.ping()
  }

  close(): Promise<void> {
    return this.chats.close()
  }
}
