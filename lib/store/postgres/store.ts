import postgres from 'postgres'
import { maskCredentials } from '../../shared/ollama-host.ts'
import type { Store } from '../store.ts'
import { bundledMigrations } from '../migrations.ts'
import { PostgresAccessStore } from './access-store.ts'
import { PostgresChatStore } from './chat-store.ts'
import { migratePostgres } from './migrate.ts'
import { PostgresResponseStore } from './response-store.ts'

/** The advisory lock of the one server on a database ("chatsrv"). */
const SERVER_LOCK = 0x63_68_61_74_73_72_76

/** The longest a health check's `SELECT 1` may take before the database counts as down. */
const PING_DEADLINE_MS = 2000

/**
 * The second backend: one PostgreSQL database named by DATABASE_URL. The connection pool is
 * opened at once; the migrations run in the background, and every query waits for them.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres'
  readonly chats: PostgresChatStore
  readonly access: PostgresAccessStore
  readonly responses: PostgresResponseStore
  readonly ready: Promise<number[]>
  private readonly sql: postgres.Sql
  private readonly url: string

  constructor(url: string, { maxConnections = 10 }: { maxConnections?: number } = {}) {
    this.url = url
    this.sql = postgres(url, { max: maxConnections, onnotice: () => {}, connection: { application_name: 'chat-ollama' } })
    this.ready = migratePostgres(this.sql, bundledMigrations('postgres'))
    // Awaited by every query; a failure here is the first query's failure too, not an unhandled one.
    this.ready.catch(() => {})
    this.chats = new PostgresChatStore(this.sql, this.ready)
    this.access = new PostgresAccessStore(this.sql, this.ready)
    this.responses = new PostgresResponseStore(this.sql, this.ready)
  }

  /**
   * One server per database, until "Several instances": a session advisory lock held by a
   * connection of its own, which PostgreSQL drops when that connection (or the process) dies.
   */
  async claimServer(): Promise<{ release(): Promise<void> }> {
    await this.ready
    const connection = await this.sql.reserve()
    const [{ claimed }] = (await connection`SELECT pg_try_advisory_lock(${SERVER_LOCK}) AS claimed`) as unknown as [{ claimed: boolean }]
    if (!claimed) {
      connection.release()
      throw new Error(`the PostgreSQL database ${maskCredentials(this.url)} is in use by another chat-ollama server; run one server per database`)
    }
    return {
      release: async () => {
        await connection`SELECT pg_advisory_unlock(${SERVER_LOCK})`
        connection.release()
      },
    }
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`PostgreSQL did not answer within ${PING_DEADLINE_MS} ms`)), PING_DEADLINE_MS)))
    try {
      await Promise.race([this.ready.then(() => this.sql`SELECT 1`), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  async close(): Promise<void> {
    await this.ready.catch(() => {})
    await this.sql.end({ timeout: 5 })
  }
}
