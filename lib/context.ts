import packageJson from '../package.json' with { type: 'json' }
import type { AccessControl } from './access/control.ts'
import type { Config } from './shared/config.ts'
import type { ImageGate } from './images/image-gate.ts'
import type { GenerationRegistry } from './generation/registry.ts'
import type { CheckpointClock } from './generation/checkpoint-clock.ts'
import type { TokenEstimator } from './generation/context-budget.ts'
import type { Metrics } from './observability/metrics.ts'
import type { ResponseRegistry } from './openai/response-run.ts'
import type { ResponseStore } from './store/response-store.ts'
import type { Logger } from './observability/log.ts'
import type { Tracing } from './observability/tracing.ts'
import type { OllamaPool } from './ollama/pool.ts'
import type { McpHub } from './tools/mcp-hub.ts'
import type { ApprovalClock } from './generation/approvals.ts'
import type { ChatStore } from './store/store.ts'
import type { Store } from './store/store.ts'
import type { Ingestion } from './documents/ingestion.ts'
import type { VectorCache } from './documents/retrieval.ts'

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
  /** Uploaded files being read and embedded in the background (docs/documents.md). */
  ingestion: Ingestion
  /** Completed files' vectors, kept in memory for retrieval. */
  vectors: VectorCache
  /** Spans of what the app does (docs/tracing.md): off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. */
  tracer: Tracing
}

/** What a caller may give an app context instead of what config would make (tests, a FaaS shim). */
export type AppParts = Partial<Omit<AppContext, 'config' | 'store'>>
