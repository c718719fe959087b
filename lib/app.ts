import { BuiltinTools } from './tools/builtin/builtin-tools.ts'
import { randomUUID } from 'node:crypto'
import { AccessControl } from './access/control.ts'
import type { AppContext, AppParts } from './context.ts'
import { loadConfig, ollamaHostsOf, readEnvironment, type Config } from './shared/config.ts'
import { ImageGate } from './images/image-gate.ts'
import { GenerationRegistry } from './generation/registry.ts'
import { CheckpointClock } from './generation/checkpoint-clock.ts'
import { TokenEstimator } from './generation/context-budget.ts'
import { resumeTurn } from './generation/chat-turn.ts'
import { Metrics } from './observability/metrics.ts'
import { ResponseRegistry } from './openai/response-run.ts'
import { createLogger, logContext } from './observability/log.ts'
import { traceLogFields, Tracing } from './observability/tracing.ts'
import { tracedStore } from './store/traced-store.ts'
import { OllamaPool } from './ollama/pool.ts'
import { McpHub } from './tools/mcp-hub.ts'
import { ApprovalClock } from './generation/approvals.ts'
import { Ingestion } from './documents/ingestion.ts'
import { VectorCache } from './documents/retrieval.ts'
import { SqliteStore } from './store/sqlite/store.ts'
import type { Store } from './store/store.ts'
import { VERSION } from './context.ts'

/*
 * How an app context is made (lib/context.ts says what it is). Apart from the type, so that the
 * modules the context holds may take the context's type without a cycle.
 */

const contexts = new WeakSet<object>()

/** The app context over `parts.database` (opened with openStore), with the rest made from `config` unless given. */
export function createAppContext(config: Config, parts: AppParts & { database: Store }): AppContext {
  const log = parts.log ?? createLogger({ level: config.logLevel, format: config.logFormat })
  const { database } = parts
  const tracer = parts.tracer ?? new Tracing()
  const ollama = parts.ollama ?? new OllamaPool({ hosts: ollamaHostsOf(config), headersTimeoutMs: config.ollamaTimeoutMs, probeIntervalMs: config.ollamaProbeIntervalMs, log, tracer })
  const shared = database.cluster
  const generations = parts.generations ?? new GenerationRegistry(config.maxConcurrentChats, undefined, config.maxConcurrentChatsPerUser, shared?.slots ?? null)
  const context: AppContext = {
    config,
    log,
    database,
    // Traced, each call a span, only when tracing is configured: off, the store is called as it is.
    store: config.tracing ? tracedStore(database.chats, tracer, database.kind) : database.chats,
    ollama,
    generations,
    access: parts.access ?? new AccessControl(config, database.access, log, { shared: shared?.buckets ?? null }),
    metrics: parts.metrics ?? new Metrics({ instanceId: config.instanceId, activeGenerations: () => generations.size, hosts: () => ollama.hostStates() }),
    responses: parts.responses ?? { store: database.responses, registry: new ResponseRegistry() },
    tokens: parts.tokens ?? new TokenEstimator(),
    tools: parts.tools ?? new McpHub(config.mcpServers, log, VERSION, config.mcpConnectTimeoutMs, new BuiltinTools(config, log, VERSION), { store: database.mcpAuth, key: config.mcpOAuthKey }, tracer),
    approvals: undefined as unknown as ApprovalClock,
    imageGate: parts.imageGate ?? new ImageGate(config.imageConcurrency),
    checkpoints: parts.checkpoints ?? new CheckpointClock(config.checkpointIntervalMs),
    ingestion: parts.ingestion ?? new Ingestion({ store: database.documents, ollama, config, log }),
    vectors: parts.vectors ?? new VectorCache(),
    tracer,
  }
  // It resumes replies through this context.
  context.approvals = parts.approvals ?? new ApprovalClock({ store: context.store, log, resume: async (paused, userId) => void (await resumeTurn(context, paused, userId)) })
  contexts.add(context)
  return context
}

/**
 * Turns tracing on when the configuration says so (docs/tracing.md): OpenTelemetry's packages are
 * loaded here, and only then. Every log line of traced work carries its trace and span ids.
 */
export async function startTracing(app: AppContext): Promise<void> {
  const settings = app.config.tracing
  if (!settings || app.tracer.enabled) return
  const { startOtelTracer } = await import('./observability/otel.ts')
  app.tracer.use(await startOtelTracer(settings, {
    version: VERSION,
    instanceId: app.config.instanceId,
    log: app.log,
    counted: (outcome, count) => app.metrics.traceSpansEnded(outcome, count),
  }))
  logContext.fields = traceLogFields
  app.log.info('tracing on', { endpoint: settings.endpoint.replace(/\/\/[^@/]*@/, '//***@'), protocol: settings.protocol, sampler: settings.sampler, capture_content: settings.captureContent })
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
    inputAnswered: (inputId) => app.tools.inputs.answered(inputId),
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
    await startTracing(app)
    // A FaaS copy is one more instance: it holds a lease and hears cancels while it is warm.
    if (app.database.cluster) await joinDatabase(app)
    return app
  })()
  return environmentContext
}
