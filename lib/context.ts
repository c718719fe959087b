import { randomUUID } from 'node:crypto'
import packageJson from '../package.json' with { type: 'json' }
import { AccessControl } from './access/control.ts'
import { loadConfig, ollamaHostsOf, readEnvironment, type Config } from './shared/config.ts'
import { ImageGate } from './images/image-gate.ts'
import { GenerationRegistry } from './generation/registry.ts'
import { CheckpointClock } from './generation/checkpoint-clock.ts'
import { TokenEstimator } from './generation/context-budget.ts'
import { Metrics } from './observability/metrics.ts'
import { ResponseRegistry } from './openai/response-run.ts'
import type { ResponseStore } from './store/response-store.ts'
import { createLogger, type Logger } from './observability/log.ts'
import { OllamaPool } from './ollama/pool.ts'
import { McpHub } from './tools/mcp-hub.ts'
import { ApprovalClock } from './generation/approvals.ts'
import type { ChatStore } from './store/chat-store.ts'
import { SqliteStore } from './store/sqlite/store.ts'
import type { Store } from './store/store.ts'

export const VERSION: string = packageJson.version

/** What every handler may use besides its Request: built once per process (or FaaS cold start). */
export interface AppContext {
  config: Config
  /** The database, whichever backend it is; `store`, `access.store` and `responses.store` are its parts. */
  database: Store
  /** Conversations: sessions and messages. */
  store: ChatStore
  ollama: OllamaPool
  log: Logger
  generations: GenerationRegistry
  access: AccessControl
  metrics: Metrics
  /** Prompt sizes per model, corrected by what Ollama counts (docs/long-conversations.md). */
  tokens: TokenEstimator
  /** OpenAI's Responses: stored ones, and those running now. */
  responses: { store: ResponseStore; registry: ResponseRegistry }
  /** The MCP servers of MCP_CONFIG, connected when first needed (docs/tools.md). */
  tools: McpHub
  /** Tool calls waiting for approval: their expiry, and resuming their replies. */
  approvals: ApprovalClock
  /** When streaming replies' checkpoints start (CHECKPOINT_INTERVAL, learnt from how late they commit). */
  checkpoints: CheckpointClock
  /** Images being decoded and re-encoded at once (IMAGE_CONCURRENCY), and those waiting. */
  imageGate: ImageGate
}

const contexts = new WeakSet<object>()

/** What a caller may give an app context instead of what config would make (tests, a FaaS shim). */
export type AppParts = Partial<Omit<AppContext, 'config' | 'store'>>

/** The app context over `parts.database` (opened with openStore), with the rest made from `config` unless given. */
export function createAppContext(config: Config, parts: AppParts & { database: Store }): AppContext {
  const log = parts.log ?? createLogger({ level: config.logLevel, format: config.logFormat })
  const { database } = parts
  const ollama = parts.ollama ?? new OllamaPool({ hosts: ollamaHostsOf(config), headersTimeoutMs: config.ollamaTimeoutMs, probeIntervalMs: config.ollamaProbeIntervalMs, log })
  const shared = database.cluster
  const generations = parts.generations ?? new GenerationRegistry(config.maxConcurrentChats, undefined, config.maxConcurrentChatsPerUser, shared?.slots ?? null)
  const context: AppContext = {
    config,
    log,
    database,
    store: database.chats,
    ollama,
    generations,
    access: parts.access ?? new AccessControl(config, database.access, log, { shared: shared?.buckets ?? null }),
    metrics: parts.metrics ?? new Metrics({ instanceId: config.instanceId, activeGenerations: () => generations.size, hosts: () => ollama.hostStates() }),
    responses: parts.responses ?? { store: database.responses, registry: new ResponseRegistry() },
    tokens: parts.tokens ?? new TokenEstimator(),
    tools: parts.tools ?? new McpHub(config.mcpServers, log, VERSION, config.mcpConnectTimeoutMs),
    approvals: undefined as unknown as ApprovalClock,
    imageGate: parts.imageGate ?? new ImageGate(config.imageConcurrency),
    checkpoints: parts.checkpoints ?? new CheckpointClock(config.checkpointIntervalMs),
  }
  // It resumes replies through this context.
  context.approvals = parts.approvals ?? new ApprovalClock(context)
  contexts.add(context)
  return context
}

export function isAppContext(value: unknown): value is AppContext {
  return typeof value === 'object' && value !== null && contexts.has(value)
}

/**
 * The store `config` names: PostgreSQL when DATABASE_URL is set (its client loaded only then),
 * else the SQLite file at DB_PATH.
 */
export async function openStore(config: Config): Promise<Store> {
  if (!config.databaseUrl) return new SqliteStore(config.dbPath)
  const { PostgresStore } = await import('./store/postgres/store.ts')
  return new PostgresStore(config.databaseUrl, { instanceId: config.instanceId, leaseMs: config.instanceLeaseMs })
}

/**
 * Joins `app` to its database's other instances (PostgreSQL) or takes the database for this
 * server alone (SQLite): a cancel asked on another instance stops what runs here.
 */
export function joinDatabase(app: AppContext): Promise<{ release(): Promise<void> }> {
  return app.database.join({
    log: app.log,
    busySessions: () => app.generations.busySessions(),
    cancel(target) {
      if (target.kind === 'reply') {
        void app.generations.cancel(target.sessionId)
        return
      }
      const running = app.responses.registry.get(target.id)
      if (running?.run) running.run.stop('cancelled')
      else running?.reservation.abortSetup('cancelled')
    },
  })
}

let environmentContext: Promise<AppContext> | undefined

/** The context a deployed function builds from its environment on its first request. */
export function contextFromEnvironment(): Promise<AppContext> {
  environmentContext ??= (async () => {
    const environment = readEnvironment()
    const config = loadConfig(environment)
    // Each function bundle is an instance of its own, several to a process at times (host name and pid are not enough).
    if (!environment.INSTANCE_ID?.trim()) config.instanceId = `${config.instanceId}-${randomUUID().slice(0, 8)}`
    const app = createAppContext(config, { database: await openStore(config) })
    // A FaaS copy is one more instance: it holds a lease and hears cancels while it is warm.
    if (app.database.cluster) await joinDatabase(app)
    return app
  })()
  return environmentContext
}
