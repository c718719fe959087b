import { hostname } from 'node:os'
import postgres from 'postgres'
import type { ClusterMember } from '../cluster.ts'
import type { Store } from '../store.ts'
import { bundledMigrations } from '../migrations.ts'
import { PostgresAccessStore } from './access-store.ts'
import { PostgresChatStore } from './chat-store.ts'
import { PostgresCluster } from './cluster.ts'
import { migratePostgres } from './migrate.ts'
import { PostgresResponseStore } from './response-store.ts'
import { PostgresDocuments } from './documents.ts'
import { PostgresPrompts } from './prompts.ts'
import { PostgresShares } from './shares.ts'
import { PostgresInputs } from './inputs.ts'
import { PostgresMcpAuth } from './mcp-auth.ts'

/** The longest a health check's `SELECT 1` may take before the database counts as down. */
const PING_DEADLINE_MS = 2000

export interface PostgresOptions {
  maxConnections?: number
  /** INSTANCE_ID: this process among those sharing the database. */
  instanceId?: string
  /** INSTANCE_LEASE in ms. */
  leaseMs?: number
}

/**
 * The second backend: one PostgreSQL database named by DATABASE_URL. The connection pool is
 * opened at once; the migrations run in the background, and every query waits for them.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres'
  readonly chats: PostgresChatStore
  readonly access: PostgresAccessStore
  readonly responses: PostgresResponseStore
  readonly documents: PostgresDocuments
  readonly prompts: PostgresPrompts
  readonly shares: PostgresShares
  readonly inputs: PostgresInputs
  readonly mcpAuth: PostgresMcpAuth
  readonly cluster: PostgresCluster
  readonly ready: Promise<number[]>
  private readonly sql: postgres.Sql

  constructor(url: string, { maxConnections = 10, instanceId = `${hostname()}-${process.pid}`, leaseMs = 15_000 }: PostgresOptions = {}) {
    this.sql = postgres(url, {
      max: maxConnections,
      onnotice: () => {},
      connection: { application_name: `chat-ollama:${instanceId}`.slice(0, 63) },
      // Reconnecting after failures waits at most half a second (postgres.js's default grows to
      // 20 s): after an outage this instance must renew its lease before another sweeps its replies.
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 0.5),
    })
    this.ready = migratePostgres(this.sql, bundledMigrations('postgres'))
    // Awaited by every query; a failure here is the first query's failure too, not an unhandled one.
    this.ready.catch(() => {})
    // postgres.js asks every new connection for the array types, and drops that query's promise: a
    // connection terminated during it (pg_terminate_backend, a restart) would end this process
    // with an unhandled rejection. The types it learnt on the first connection are kept for all,
    // so later connections need not ask again.
    void this.ready.then(() => {
      this.sql.options.fetch_types = false
    }, () => {})
    this.chats = new PostgresChatStore(this.sql, this.ready, instanceId)
    this.access = new PostgresAccessStore(this.sql, this.ready, instanceId)
    this.responses = new PostgresResponseStore(this.sql, this.ready, instanceId)
    this.documents = new PostgresDocuments(this.sql, this.ready, instanceId)
    this.prompts = new PostgresPrompts(this.sql, this.ready, instanceId)
    this.shares = new PostgresShares(this.sql, this.ready, instanceId)
    this.inputs = new PostgresInputs(this.sql, this.ready, instanceId)
    this.mcpAuth = new PostgresMcpAuth(this.sql, this.ready, instanceId)
    this.cluster = new PostgresCluster(this.sql, this.ready, instanceId, leaseMs)
  }

  /** Joins the instances on this database; `release` leaves (after the replies here have ended). */
  async join(member: ClusterMember): Promise<{ release(): Promise<void> }> {
    await this.cluster.join(member)
    return { release: () => this.cluster.leave() }
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
