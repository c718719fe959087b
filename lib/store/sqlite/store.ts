import type { Store } from '../store.ts'
import { SqliteAccessStore } from './access-store.ts'
import { SqliteChatStore, type StoreOptions } from './chat-store.ts'
import { SqliteResponseStore } from './response-store.ts'

/** The embedded default: one SQLite file (or `:memory:`), opened and migrated here. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  readonly chats: SqliteChatStore
  readonly access: SqliteAccessStore
  readonly responses: SqliteResponseStore

  constructor(path: string, options: StoreOptions = {}) {
    this.chats = new SqliteChatStore(path, options)
    this.access = new SqliteAccessStore(this.chats.db)
    this.responses = new SqliteResponseStore(this.chats.db)
  }

  get path(): string {
    return this.chats.path
  }

  get db() {
    return this.chats.db
  }

  ping(): Promise<void> {
    return this.chats.ping()
  }

  close(): Promise<void> {
    return this.chats.close()
  }
}
