import { existsSync, readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parseEnv } from 'node:util'
import * as v from 'valibot'
import { tracingSettings, type TracingSettings } from '../observability/tracing.ts'
import { canonicalModelName, isModelAllowed } from './models.ts'
import { isLoopbackBind } from './host-check.ts'
import { maskCredentials, parseOllamaHost } from './ollama-host.ts'
import { readMcpConfig, type BuiltinToolName, type McpServerConfig, type ToolPolicy } from './mcp-config.ts'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

export interface Config {
  port: number
  host: string
  env: string
  dbPath: string
  /** DATABASE_URL: PostgreSQL instead of SQLite when set (it wins over DB_PATH); null otherwise. */
  databaseUrl: string | null
  /** This instance's name among those sharing a PostgreSQL database: INSTANCE_ID, else host name and pid. */
  instanceId: string
  /** How long an instance's replies stay its own without a renewal (renewed every third of it). */
  instanceLeaseMs: number
  ollamaHost: string
  /** OLLAMA_HOSTS parsed; empty: the one host OLLAMA_HOST names. Use ollamaHostsOf(config). */
  ollamaHosts: string[]
  /** How often each Ollama host's health, models and loaded models are refreshed. */
  ollamaProbeIntervalMs: number
  ollamaTimeoutMs: number
  chatTimeoutMs: number
  defaultModel: string
  /** Canonical names (lib/shared/models.ts); empty means every model is allowed. */
  allowedModels: string[]
  defaultNumCtx: number
  /** What each request keeps of num_ctx for the reply when it sets no max_tokens (CONTEXT_RESERVE). */
  contextReserve: ContextReserve
  /** Where a cut brings the prompt: this fraction of the budget (CONTEXT_LOW_WATER). */
  contextLowWater: number
  /** Whether a cut is summarized by the session's model (CONTEXT_SUMMARY). */
  contextSummary: boolean
  /** Whether chats may be shared as read-only snapshots at unguessable links (SHARE_LINKS). */
  shareLinks: boolean
  maxConcurrentChats: number
  /** Replies one user may have running at once, every route together (not applied to the local user of AUTH=off). */
  maxConcurrentChatsPerUser: number
  /** Items in one request's input, messages or items array. */
  maxInputItems: number
  maxMessageChars: number
  maxBodyBytes: number
  /** The largest POST /v1/import body (IMPORT_MAX_BYTES): a whole chat history. */
  importMaxBytes: number
  /** The model documents are embedded with (EMBED_MODEL); docs/documents.md. */
  embedModel: string
  /** The largest uploaded file (FILE_MAX_BYTES). */
  fileMaxBytes: number
  /** What one user may keep: files, their bytes, and their chunks (USER_MAX_FILES, USER_MAX_FILE_BYTES, USER_MAX_CHUNKS). */
  userMaxFiles: number
  userMaxFileBytes: number
  userMaxChunks: number
  /** Sources retrieved for a chat turn (RAG_TOP_K). */
  ragTopK: number
  /** Images one message may carry (0: none); docs/images.md. */
  maxImagesPerMessage: number
  /** The largest image, decoded, as it is sent. */
  maxImageBytes: number
  /** The most pixels an image may declare in its header (decompression bombs are refused unread). */
  imageMaxPixels: number
  /** The longer side of an image as stored and shown to the model. */
  imageMaxSide: number
  readTimeoutMs: number
  writeTimeoutMs: number
  sseHeartbeatMs: number
  checkpointIntervalMs: number
  shutdownGraceMs: number
  /** The exact origins allowed cross-origin; empty: same origin only. */
  corsOrigins: string[]
  /** Host names accepted besides the local ones while AUTH is off. */
  allowedHosts: string[]
  /** `off`: no credentials, one local user (loopback only); `required`: every route but the public ones needs a key. */
  auth: 'off' | 'required'
  /** Requests per user and window; null when RATE_LIMIT=0. */
  rateLimit: RateLimit | null
  logLevel: LogLevel
  logFormat: 'json' | 'text'
  /** The MCP servers MCP_CONFIG names (docs/tools.md); none without it. */
  mcpServers: McpServerConfig[]
  /** The built-in tools MCP_CONFIG's `builtin` section turns on, with their policies (docs/builtin-tools.md). */
  builtinTools: ReadonlyMap<BuiltinToolName, Exclude<ToolPolicy, 'deny'>>
  /** Who answers `web_search`. */
  webSearchProvider: 'searxng' | 'brave' | 'tavily'
  /** The provider's address: a SearXNG instance (required for it), or another API's base (its public one when empty). */
  webSearchUrl: string
  /** Secrets: never logged, returned or stored. */
  braveApiKey: string
  tavilyApiKey: string
  /** Results one search gives the model at most (its `max_results` asks for fewer). */
  webSearchMaxResults: number
  /** Hosts `fetch_url` may reach whatever their addresses (loopback, private…): exact names or IP literals. */
  fetchAllowedHosts: string[]
  /** The most of a page `fetch_url` reads (bytes as sent, and again once decompressed). */
  fetchMaxBytes: number
  /** The memory one Python interpreter may use (its WebAssembly heap). */
  pythonMemoryBytes: number
  /** Python interpreters kept started and waiting for a call. */
  pythonPoolSize: number
  /** Images an instance decodes and re-encodes at once (IMAGE_CONCURRENCY). */
  imageConcurrency: number
  /** Model calls one turn with tools may make (MAX_TOOL_STEPS). */
  maxToolSteps: number
  /** Tools one turn may offer the model (MAX_TOOLS_PER_TURN). */
  maxToolsPerTurn: number
  /** How long one tool call may run before it is cancelled. */
  toolTimeoutMs: number
  /** How long connecting to an MCP server and listing its tools may take before it counts as down. */
  mcpConnectTimeoutMs: number
  /** The most of a tool's result (UTF-8 bytes) that is kept and sent to the model. */
  toolResultMaxBytes: number
  /** How long a call of an `ask` tool waits for its user's answer before it counts as denied. */
  toolApprovalTimeoutMs: number
  /** How long a tool call waits for its user's input (MCP elicitation) before it is answered `cancel`. */
  toolInputTimeoutMs: number
  /** MCP_OAUTH_KEY: the 32-byte key MCP servers' OAuth tokens are stored encrypted with; null when unset (no authorization-code sign-in then). */
  mcpOAuthKey: Buffer | null
  /** The origin this service is reached at (PUBLIC_URL), for the OAuth callback; empty: the origin of the admin's own request. */
  publicUrl: string
  /** Tracing (docs/tracing.md), from OpenTelemetry's standard variables; null when off (the default). */
  tracing: TracingSettings | null
}

/** A token count, or a fraction of num_ctx. */
export type ContextReserve = { tokens: number } | { fraction: number }

export interface RateLimit {
  requests: number
  windowMs: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy

/** Go's time.ParseDuration forms without a sign: `250ms`, `30s`, `1h30m`, and a bare `0`. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0
  if (text === '') return undefined
  DURATION_PART.lastIndex = 0
  let total = 0
  let match: RegExpExecArray | null
  let consumed = 0
  while ((match = DURATION_PART.exec(text)) !== null) {
    total += Number(match[1]) * DURATION_UNITS_MS[match[2]!]!
    consumed = DURATION_PART.lastIndex
  }
  return consumed === text.length ? Math.round(total) : undefined
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
}

/** A byte count: `1048576`, `512KiB`, `1MiB`, `2MB`. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text)
  const unit = match && BYTE_UNITS[match[2]!.toLowerCase()]
  return unit ? Number(match[1]) * unit : undefined
}

interface Setting<T> {
  variable: string
  fallback: string
  expected: string
  schema: v.GenericSchema<string, T>
}

const durationMs = v.pipe(
  v.string(),
  v.transform(parseDuration),
  v.number(),
)
const positiveDurationMs = v.pipe(durationMs, v.minValue(1))
const count = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/), v.transform(Number), v.number(), v.minValue(min), v.maxValue(max))

const setting = <T>(variable: string, fallback: string, expected: string, schema: v.GenericSchema<string, T>): Setting<T> =>
  ({ variable, fallback, expected, schema })

const DURATION = 'a duration such as 250ms, 30s, 5m or 1h'

const SETTINGS = {
  port: setting('PORT', '8080', 'a port number from 0 to 65535', count(0, 65535)),
  host: setting('HOST', '127.0.0.1', 'a host name or IP address', v.pipe(v.string(), v.nonEmpty())),
  env: setting('ENV', 'development', 'development or production', v.picklist(['development', 'production', 'test'])),
  dbPath: setting('DB_PATH', './data/chat.db', 'a file path or :memory:', v.pipe(v.string(), v.nonEmpty())),
  databaseUrl: setting('DATABASE_URL', 'none', 'postgres://user:password@host:5432/database (or postgresql://…)',
    v.pipe(v.string(), v.transform(parseDatabaseUrl), v.union([v.null(), v.string()]))),
  instanceId: setting('INSTANCE_ID', 'host-pid', '1 to 64 letters, digits, ., _, : or -',
    v.pipe(v.string(), v.transform((id) => (id === 'host-pid' ? `${hostname().slice(0, 50)}-${process.pid}` : id)), v.regex(/^[\w.:-]{1,64}$/))),
  instanceLeaseMs: setting('INSTANCE_LEASE', '15s', 'a duration from 300ms to 10m', v.pipe(durationMs, v.minValue(300), v.maxValue(600_000))),
  ollamaHost: setting('OLLAMA_HOST', 'localhost:11434', 'host:port, http://host:port or https://host',
    v.pipe(v.string(), v.transform(parseOllamaHost), v.string())),
  ollamaHosts: setting('OLLAMA_HOSTS', '', 'a comma-separated list of hosts in the OLLAMA_HOST forms',
    v.pipe(v.string(), v.transform(parseHostsList), v.array(v.string()))),
  ollamaProbeIntervalMs: setting('OLLAMA_PROBE_INTERVAL', '5s', DURATION, positiveDurationMs),
  ollamaTimeoutMs: setting('OLLAMA_TIMEOUT', '30s', DURATION, positiveDurationMs),
  chatTimeoutMs: setting('CHAT_TIMEOUT', '5m', DURATION, positiveDurationMs),
  defaultModel: setting('DEFAULT_MODEL', 'llama3.2', 'a model name such as llama3.2 or qwen3:8b',
    v.pipe(v.string(), v.trim(), v.nonEmpty())),
  allowedModels: setting('ALLOWED_MODELS', '', 'a comma-separated list of model names',
    v.pipe(v.string(), v.transform((list) => list.split(',').map((name) => name.trim()).filter(Boolean).map(canonicalModelName)))),
  defaultNumCtx: setting('DEFAULT_NUM_CTX', '8192', 'a whole number of tokens from 1 to 1048576', count(1, 1_048_576)),
  contextReserve: setting('CONTEXT_RESERVE', '25%', 'a token count such as 512, or a percentage of num_ctx from 1% to 90% such as 25%',
    v.pipe(v.string(), v.transform(parseReserve), v.union([v.object({ tokens: v.number() }), v.object({ fraction: v.number() })]))),
  contextLowWater: setting('CONTEXT_LOW_WATER', '60%', 'a percentage of the budget from 10% to 95%',
    v.pipe(v.string(), v.transform(parsePercent), v.number(), v.minValue(0.1), v.maxValue(0.95))),
  contextSummary: setting('CONTEXT_SUMMARY', 'off', 'on or off', v.pipe(v.picklist(['on', 'off']), v.transform((value) => value === 'on'))),
  shareLinks: setting('SHARE_LINKS', 'off', 'on or off', v.pipe(v.picklist(['on', 'off']), v.transform((value) => value === 'on'))),
  maxConcurrentChats: setting('MAX_CONCURRENT_CHATS', '100', 'a whole number from 1 to 100000', count(1, 100_000)),
  maxConcurrentChatsPerUser: setting('MAX_CONCURRENT_CHATS_PER_USER', '10', 'a whole number from 1 to 100000', count(1, 100_000)),
  maxInputItems: setting('MAX_INPUT_ITEMS', '1000', 'a whole number from 1 to 100000', count(1, 100_000)),
  maxMessageChars: setting('MAX_MESSAGE_CHARS', '32000', 'a whole number from 1 to 10000000', count(1, 10_000_000)),
  maxBodyBytes: setting('MAX_BODY_BYTES', '1MiB', 'a size such as 1048576, 512KiB or 1MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1))),
  importMaxBytes: setting('IMPORT_MAX_BYTES', '64MiB', 'a size from 1 byte to 1GiB such as 67108864 or 64MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1), v.maxValue(1024 ** 3))),
  embedModel: setting('EMBED_MODEL', 'nomic-embed-text', 'an embedding model name such as nomic-embed-text or mxbai-embed-large',
    v.pipe(v.string(), v.trim(), v.nonEmpty())),
  fileMaxBytes: setting('FILE_MAX_BYTES', '32MiB', 'a size from 1 byte to 1GiB such as 33554432 or 32MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1), v.maxValue(1024 ** 3))),
  userMaxFiles: setting('USER_MAX_FILES', '1000', 'a whole number from 1 to 1000000', count(1, 1_000_000)),
  userMaxFileBytes: setting('USER_MAX_FILE_BYTES', '1GiB', 'a size from 1 byte to 1TiB such as 1073741824 or 1GiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1), v.maxValue(1024 ** 4))),
  userMaxChunks: setting('USER_MAX_CHUNKS', '100000', 'a whole number from 1 to 10000000', count(1, 10_000_000)),
  ragTopK: setting('RAG_TOP_K', '5', 'a whole number from 1 to 50', count(1, 50)),
  maxImagesPerMessage: setting('MAX_IMAGES_PER_MESSAGE', '4', 'a whole number from 0 to 64', count(0, 64)),
  maxImageBytes: setting('MAX_IMAGE_BYTES', '10MiB', 'a size from 1 byte to 100MiB such as 10485760 or 10MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1), v.maxValue(100 * 1024 ** 2))),
  imageMaxPixels: setting('IMAGE_MAX_PIXELS', '50000000', 'a whole number of pixels from 1 to 1000000000', count(1, 1_000_000_000)),
  imageMaxSide: setting('IMAGE_MAX_SIDE', '1568', 'a whole number of pixels from 16 to 16384', count(16, 16_384)),
  readTimeoutMs: setting('READ_TIMEOUT', '30s', DURATION, positiveDurationMs),
  writeTimeoutMs: setting('WRITE_TIMEOUT', '30s', DURATION, positiveDurationMs),
  sseHeartbeatMs: setting('SSE_HEARTBEAT', '15s', DURATION, positiveDurationMs),
  checkpointIntervalMs: setting('CHECKPOINT_INTERVAL', '1s', DURATION, positiveDurationMs),
  shutdownGraceMs: setting('SHUTDOWN_GRACE', '10s', DURATION, durationMs),
  corsOrigins: setting('CORS_ORIGINS', '', 'a comma-separated list of exact origins such as https://chat.example.com (* is not allowed)',
    v.pipe(v.string(), v.transform(parseCorsOrigins), v.array(v.string()))),
  allowedHosts: setting('ALLOWED_HOSTS', '', 'a comma-separated list of host names such as chat.home.arpa',
    v.pipe(v.string(), v.transform(parseHostList), v.array(v.string()))),
  auth: setting('AUTH', 'auto', 'off or required (unset: off on a loopback HOST, required otherwise)', v.picklist(['auto', 'off', 'required'])),
  rateLimit: setting('RATE_LIMIT', '120/min', 'N/s, N/min or N/h such as 120/min, or 0 for no limit',
    v.pipe(v.string(), v.transform(parseRateLimit), v.union([v.null(), v.object({ requests: v.number(), windowMs: v.number() })]))),
  imageConcurrency: setting('IMAGE_CONCURRENCY', '2', 'a whole number from 1 to 64', count(1, 64)),
  maxToolSteps: setting('MAX_TOOL_STEPS', '8', 'a whole number from 1 to 64', count(1, 64)),
  maxToolsPerTurn: setting('MAX_TOOLS_PER_TURN', '128', 'a whole number from 1 to 1024', count(1, 1024)),
  toolTimeoutMs: setting('TOOL_TIMEOUT', '30s', DURATION, positiveDurationMs),
  mcpConnectTimeoutMs: setting('MCP_CONNECT_TIMEOUT', '5s', DURATION, positiveDurationMs),
  toolResultMaxBytes: setting('TOOL_RESULT_MAX_BYTES', '16KiB', 'a size from 256 bytes to 1MiB such as 16384 or 16KiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(256), v.maxValue(1024 ** 2))),
  toolApprovalTimeoutMs: setting('TOOL_APPROVAL_TIMEOUT', '10m', DURATION, positiveDurationMs),
  toolInputTimeoutMs: setting('TOOL_INPUT_TIMEOUT', '2m', DURATION, positiveDurationMs),
  publicUrl: setting('PUBLIC_URL', 'none', 'the http(s) origin the service is reached at, such as https://chat.example.com',
    v.pipe(v.string(), v.check((url) => url === 'none' || (URL.canParse(url) && /^https?:$/.test(new URL(url).protocol) && new URL(url).origin === url.replace(/\/+$/, ''))), v.transform((url) => (url === 'none' ? '' : new URL(url).origin)))),
  webSearchProvider: setting('WEB_SEARCH_PROVIDER', 'searxng', 'searxng, brave or tavily', v.picklist(['searxng', 'brave', 'tavily'])),
  webSearchUrl: setting('WEB_SEARCH_URL', 'none', 'an http(s) URL such as http://searxng:8080',
    v.pipe(v.string(), v.check((url) => url === 'none' || (URL.canParse(url) && /^https?:$/.test(new URL(url).protocol))), v.transform((url) => (url === 'none' ? '' : url.replace(/\/+$/, ''))))),
  braveApiKey: setting('BRAVE_API_KEY', 'none', 'a Brave Search API key', v.pipe(v.string(), v.transform((key) => (key === 'none' ? '' : key)))),
  tavilyApiKey: setting('TAVILY_API_KEY', 'none', 'a Tavily API key', v.pipe(v.string(), v.transform((key) => (key === 'none' ? '' : key)))),
  webSearchMaxResults: setting('WEB_SEARCH_MAX_RESULTS', '5', 'a whole number from 1 to 20', count(1, 20)),
  fetchAllowedHosts: setting('FETCH_ALLOWED_HOSTS', '', 'a comma-separated list of host names or IP addresses such as wiki.home.arpa',
    v.pipe(v.string(), v.transform((list) => list.split(',').map((host) => host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1')).filter(Boolean)))),
  fetchMaxBytes: setting('FETCH_MAX_BYTES', '2MiB', 'a size from 1KiB to 64MiB such as 2097152 or 2MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(1024), v.maxValue(64 * 1024 ** 2))),
  pythonMemoryBytes: setting('PYTHON_MEMORY', '256MiB', 'a size from 64MiB to 2GiB such as 256MiB',
    v.pipe(v.string(), v.transform(parseByteSize), v.number(), v.minValue(64 * 1024 ** 2), v.maxValue(2 * 1024 ** 3))),
  pythonPoolSize: setting('PYTHON_POOL_SIZE', '1', 'a whole number from 1 to 16', count(1, 16)),
  logLevel: setting('LOG_LEVEL', 'info', 'debug, info, warn or error', v.picklist(['debug', 'info', 'warn', 'error'])),
  logFormat: setting('LOG_FORMAT', 'json', 'json or text', v.picklist(['json', 'text'])),
} satisfies { [K in Exclude<keyof Config, 'mcpServers' | 'builtinTools' | 'mcpOAuthKey' | 'tracing'>]: Setting<K extends 'auth' ? Config[K] | 'auto' : Config[K]> }

function parsePercent(text: string): number | undefined {
  const match = /^(\d{1,3})%$/.exec(text)
  return match ? Number(match[1]) / 100 : undefined
}

function parseReserve(text: string): ContextReserve | undefined {
  if (/^\d{1,7}$/.test(text)) return Number(text) >= 1 ? { tokens: Number(text) } : undefined
  const fraction = parsePercent(text)
  return fraction !== undefined && fraction >= 0.01 && fraction <= 0.9 ? { fraction } : undefined
}

function parseCorsOrigins(list: string): string[] | undefined {
  const origins = list.split(',').map((origin) => origin.trim()).filter(Boolean)
  return origins.every((origin) => /^https?:\/\/[^/\s*]+$/.test(origin)) ? origins : undefined
}

function parseHostsList(list: string): string[] | undefined {
  const hosts = list.split(',').map((host) => host.trim()).filter(Boolean).map(parseOllamaHost)
  if (hosts.some((host) => host === undefined)) return undefined
  return new Set(hosts).size === hosts.length ? (hosts as string[]) : undefined
}

function parseDatabaseUrl(text: string): string | null | undefined {
  if (text === 'none') return null
  try {
    const url = new URL(text)
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '' ? text : undefined
  } catch {
    return undefined
  }
}

/** 32 bytes written as 64 hex digits or in base64 (standard or URL-safe, padded or not). */
function parseKey(text: string): Buffer | undefined {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(text) ? Buffer.from(text, 'base64') : undefined
  return key?.length === 32 ? key : undefined
}

/** The Ollama hosts to use: OLLAMA_HOSTS when set, else the one OLLAMA_HOST names. */
export function ollamaHostsOf(config: Pick<Config, 'ollamaHost' | 'ollamaHosts'>): string[] {
  return config.ollamaHosts.length > 0 ? config.ollamaHosts : [config.ollamaHost]
}

const RATE_WINDOWS_MS: Record<string, number> = { s: 1000, min: 60_000, h: 3_600_000 }

function parseRateLimit(text: string): RateLimit | null | undefined {
  if (text === '0') return null
  const match = /^(\d{1,7})\/(s|min|h)$/.exec(text)
  if (!match || Number(match[1]) < 1) return undefined
  return { requests: Number(match[1]), windowMs: RATE_WINDOWS_MS[match[2]!]! }
}

function parseHostList(list: string): string[] | undefined {
  const hosts = list.split(',').map((host) => host.trim().toLowerCase()).filter(Boolean)
  return hosts.every((host) => /^[a-z0-9.-]+$/.test(host)) ? hosts : undefined
}

/**
 * Reads every setting from `env`. The first bad value throws a ConfigError whose message is one
 * line naming the variable, the value and the expected form.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const config: Record<string, unknown> = {}
  for (const [key, { variable, fallback, expected, schema }] of Object.entries(SETTINGS)) {
    const raw = env[variable]?.trim() || fallback
    const result = v.safeParse(schema, raw)
    if (!result.success) {
      throw new ConfigError(`${variable}=${JSON.stringify(maskCredentials(raw))} is not valid: expected ${expected}`)
    }
    config[key] = result.output
  }
  const { defaultModel, allowedModels } = config as Pick<Config, 'defaultModel' | 'allowedModels'>
  if (!isModelAllowed(defaultModel, allowedModels)) {
    throw new ConfigError(`DEFAULT_MODEL=${JSON.stringify(defaultModel)} is not valid: expected one of ALLOWED_MODELS (${allowedModels.join(', ')})`)
  }
  // Anything reachable from elsewhere needs credentials; no credentials is for loopback only.
  const { host, auth } = config as { host: string; auth: Config['auth'] | 'auto' }
  if (auth === 'auto') config.auth = isLoopbackBind(host) ? 'off' : 'required'
  if (auth === 'off' && !isLoopbackBind(host)) {
    throw new ConfigError(`AUTH="off" is not valid with HOST=${JSON.stringify(host)}: without credentials the server may listen on a loopback address only (HOST=127.0.0.1); set AUTH=required, or leave AUTH unset`)
  }
  // A file of MCP servers: its values hold secrets, so the message names the place, never a value.
  const mcpConfig = env.MCP_CONFIG?.trim()
  try {
    const tools = mcpConfig ? readMcpConfig(mcpConfig) : { servers: [], builtin: new Map() }
    config.mcpServers = tools.servers
    config.builtinTools = tools.builtin
  } catch (error) {
    throw new ConfigError(`MCP_CONFIG=${JSON.stringify(mcpConfig)} is not valid: ${(error as Error).message}`)
  }
  // A key: its value is a secret, so the message never quotes it.
  const oauthKey = env.MCP_OAUTH_KEY?.trim()
  config.mcpOAuthKey = oauthKey ? parseKey(oauthKey) : null
  if (config.mcpOAuthKey === undefined) throw new ConfigError('MCP_OAUTH_KEY is not valid: expected 32 random bytes in base64 or hex, such as the output of `openssl rand -base64 32`')
  try {
    config.tracing = tracingSettings(env)
  } catch (error) {
    throw new ConfigError(`${(error as Error).message} (docs/tracing.md)`)
  }
  // web_search turned on needs its provider's address or key, said at start-up rather than at the first search.
  const search = config as Pick<Config, 'builtinTools' | 'webSearchProvider' | 'webSearchUrl' | 'braveApiKey' | 'tavilyApiKey'>
  const missing = search.webSearchProvider === 'searxng' ? (search.webSearchUrl ? null : 'WEB_SEARCH_URL (the SearXNG instance)')
    : search.webSearchProvider === 'brave' ? (search.braveApiKey ? null : 'BRAVE_API_KEY') : (search.tavilyApiKey ? null : 'TAVILY_API_KEY')
  if (search.builtinTools.has('web_search') && missing) {
    throw new ConfigError(`MCP_CONFIG turns web_search on, and WEB_SEARCH_PROVIDER=${search.webSearchProvider} needs ${missing}: set it, or turn web_search off`)
  }
  // Production logs go to collectors, which want one JSON object per line.
  if (config.env === 'production') config.logFormat = 'json'
  return config as unknown as Config
}

/** The process environment over the variables of `.env` in the working folder, when it exists. */
export function readEnvironment(dotEnvPath = '.env'): Record<string, string | undefined> {
  const fromFile = existsSync(dotEnvPath) ? parseEnv(readFileSync(dotEnvPath, 'utf8')) : {}
  return { ...fromFile, ...process.env }
}
