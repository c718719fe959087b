import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig, parseByteSize, parseDuration, readEnvironment } from '../lib/shared/config.ts'
import { parseOllamaHost } from '../lib/shared/ollama-host.ts'

test('every variable has the documented default', () => {
  const config = loadConfig({})
  assert.deepEqual(config, {
    port: 8080,
    host: '127.0.0.1',
    env: 'development',
    dbPath: './data/chat.db',
    databaseUrl: null,
    instanceId: `${hostname().slice(0, 50)}-${process.pid}`,
    instanceLeaseMs: 15_000,
    ollamaHost: 'http://localhost:11434',
    ollamaHosts: [],
    ollamaProbeIntervalMs: 5000,
    ollamaTimeoutMs: 30_000,
    chatTimeoutMs: 300_000,
    defaultModel: 'llama3.2',
    allowedModels: [],
    defaultNumCtx: 8192,
    contextReserve: { fraction: 0.25 },
    contextLowWater: 0.6,
    contextSummary: false,
    shareLinks: false,
    maxConcurrentChats: 100,
    maxConcurrentChatsPerUser: 10,
    maxInputItems: 1000,
    maxMessageChars: 32_000,
    maxBodyBytes: 1_048_576,
    importMaxBytes: 67_108_864,
    embedModel: 'nomic-embed-text',
    fileMaxBytes: 33_554_432,
    userMaxFiles: 1000,
    userMaxFileBytes: 1_073_741_824,
    userMaxChunks: 100_000,
    ragTopK: 5,
    maxImagesPerMessage: 4,
    maxImageBytes: 10_485_760,
    imageMaxPixels: 50_000_000,
    imageMaxSide: 1568,
    mcpServers: [],
    builtinTools: new Map(),
    webSearchProvider: 'searxng',
    webSearchUrl: '',
    braveApiKey: '',
    tavilyApiKey: '',
    webSearchMaxResults: 5,
    fetchAllowedHosts: [],
    fetchMaxBytes: 2_097_152,
    pythonMemoryBytes: 268_435_456,
    pythonPoolSize: 1,
    maxToolSteps: 8,
    maxToolsPerTurn: 128,
    imageConcurrency: 2,
    toolTimeoutMs: 30_000,
    mcpConnectTimeoutMs: 5_000,
    toolResultMaxBytes: 16 * 1024,
    toolApprovalTimeoutMs: 600_000,
    toolInputTimeoutMs: 120_000,
    mcpOAuthKey: null,
    publicUrl: '',
    tracing: null,
    readTimeoutMs: 30_000,
    writeTimeoutMs: 30_000,
    sseHeartbeatMs: 15_000,
    checkpointIntervalMs: 1000,
    shutdownGraceMs: 10_000,
    corsOrigins: [],
    allowedHosts: [],
    auth: 'off',
    rateLimit: { requests: 120, windowMs: 60_000 },
    logLevel: 'info',
    logFormat: 'json',
  })
})

test('durations take Go forms', () => {
  assert.equal(parseDuration('250ms'), 250)
  assert.equal(parseDuration('30s'), 30_000)
  assert.equal(parseDuration('5m'), 300_000)
  assert.equal(parseDuration('1h30m'), 5_400_000)
  assert.equal(parseDuration('1.5s'), 1500)
  assert.equal(parseDuration('0'), 0)
  for (const bad of ['', '5', '5 s', 's', '-1s', '1d', '1s2']) assert.equal(parseDuration(bad), undefined, bad)
})

test('byte sizes take plain counts and binary or decimal units', () => {
  assert.equal(parseByteSize('1048576'), 1_048_576)
  assert.equal(parseByteSize('1MiB'), 1_048_576)
  assert.equal(parseByteSize('512KiB'), 524_288)
  assert.equal(parseByteSize('2MB'), 2_000_000)
  assert.equal(parseByteSize('1 mib'), 1_048_576)
  for (const bad of ['', 'MiB', '1.5MiB', '1XB', '-1']) assert.equal(parseByteSize(bad), undefined, bad)
})

test('OLLAMA_HOST is read the way Ollama reads it', () => {
  const cases: Array<[string, string | undefined]> = [
    ['ollama:11434', 'http://ollama:11434'],
    ['ollama', 'http://ollama:11434'],
    ['localhost:11434', 'http://localhost:11434'],
    [':56789', 'http://127.0.0.1:56789'],
    ['http://ollama', 'http://ollama:80'],
    ['http://ollama:80', 'http://ollama:80'],
    ['ollama:80', 'http://ollama:80'],
    ['https://example.com', 'https://example.com:443'],
    ['https://example.com/ollama/', 'https://example.com:443/ollama'],
    ['http://user:pass@host:1234/', 'http://user:pass@host:1234'],
    ['"10.0.0.5:11434"', 'http://10.0.0.5:11434'],
    ['[::1]', 'http://[::1]:11434'],
    ['ftp://host', undefined],
    ['http://', undefined],
    ['host:99999', undefined],
  ]
  for (const [input, expected] of cases) assert.equal(parseOllamaHost(input), expected, input)
})

test('lists are split, trimmed and normalised', () => {
  const config = loadConfig({ ALLOWED_MODELS: ' llama3.2, qwen3:8b ,,myns/model ', CORS_ORIGINS: 'https://a.example, http://localhost:5173' })
  assert.deepEqual(config.allowedModels, ['llama3.2:latest', 'qwen3:8b', 'myns/model:latest'])
  assert.deepEqual(config.corsOrigins, ['https://a.example', 'http://localhost:5173'])
})

test('production forces JSON logs', () => {
  assert.equal(loadConfig({ ENV: 'production', LOG_FORMAT: 'text' }).logFormat, 'json')
  assert.equal(loadConfig({ LOG_FORMAT: 'text' }).logFormat, 'text')
})

test('a bad value is named with its variable, its value and the expected form', () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT="eighty" is not valid: expected a port number/],
    [{ OLLAMA_TIMEOUT: '30' }, /^OLLAMA_TIMEOUT="30" is not valid: expected a duration such as 250ms/],
    [{ MAX_BODY_BYTES: 'lots' }, /^MAX_BODY_BYTES="lots" is not valid/],
    [{ OLLAMA_HOST: 'ftp://x' }, /^OLLAMA_HOST="ftp:\/\/x" is not valid/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL="loud" is not valid: expected debug, info, warn or error/],
    [{ CORS_ORIGINS: 'not an origin' }, /^CORS_ORIGINS="not an origin" is not valid/],
    [{ CORS_ORIGINS: '*' }, /^CORS_ORIGINS="\*" is not valid: expected .*\(\* is not allowed\)$/],
    [{ CORS_ORIGINS: 'https://a.example,*' }, /^CORS_ORIGINS=.* is not valid/],
    [{ ALLOWED_HOSTS: 'chat.example/x' }, /^ALLOWED_HOSTS=.* is not valid/],
    [{ MAX_CONCURRENT_CHATS: '0' }, /^MAX_CONCURRENT_CHATS="0" is not valid/],
    [{ DATABASE_URL: 'mysql://db/chat' }, /^DATABASE_URL="mysql:\/\/db\/chat" is not valid: expected postgres:\/\//],
    // The password is masked in the message.
    [{ DATABASE_URL: 'postgres://chat:s3cret@' }, /^DATABASE_URL="postgres:\/\/chat:\*\*\*@" is not valid/],
  ]
  for (const [env, message] of cases) {
    assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && message.test(error.message) && !error.message.includes('\n'))
  }
})

test('MCP_OAUTH_KEY is 32 bytes in hex or base64, and a bad one is refused without quoting it; PUBLIC_URL is an origin', () => {
  const key = Buffer.alloc(32, 7)
  assert.deepEqual(loadConfig({ MCP_OAUTH_KEY: key.toString('hex') }).mcpOAuthKey, key)
  assert.deepEqual(loadConfig({ MCP_OAUTH_KEY: key.toString('base64') }).mcpOAuthKey, key)
  assert.deepEqual(loadConfig({ MCP_OAUTH_KEY: key.toString('base64url') }).mcpOAuthKey, key)
  for (const bad of ['short-secret-value', key.toString('hex').slice(2), Buffer.alloc(31).toString('base64')]) {
    assert.throws(() => loadConfig({ MCP_OAUTH_KEY: bad }), (error: Error) => error instanceof ConfigError && /^MCP_OAUTH_KEY is not valid: expected 32 random bytes/.test(error.message) && !error.message.includes(bad))
  }
  assert.equal(loadConfig({ PUBLIC_URL: 'https://chat.example.com/' }).publicUrl, 'https://chat.example.com')
  assert.throws(() => loadConfig({ PUBLIC_URL: 'https://chat.example.com/app' }), /PUBLIC_URL="https:\/\/chat.example.com\/app" is not valid: expected the http\(s\) origin/)
})

test('tracing follows OpenTelemetry\'s variables: off without an endpoint; the traces path added to a base; bad values named', () => {
  assert.equal(loadConfig({ OTEL_SERVICE_NAME: 'x' }).tracing, null)
  const on = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=lab' }).tracing!
  assert.deepEqual([on.endpoint, on.protocol, on.serviceName, on.sampler, on.captureContent, on.resourceAttributes], ['http://collector:4318/v1/traces', 'http/protobuf', 'chat-ollama', 'parentbased_always_on', false, { 'deployment.environment': 'lab' }])
  assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/otlp/v1/traces' }).tracing!.endpoint, 'http://tempo:4318/otlp/v1/traces')
  assert.equal(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).tracing, null)
  assert.deepEqual(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-team=ai' }).tracing!.headers, { authorization: 'Bearer abc', 'x-team': 'ai' })
  for (const [env, message] of [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http\(s\) URL/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /grpc is not supported/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER must be one of/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, /ratio from 0 to 1/],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_BSP_MAX_QUEUE_SIZE: '0' }, /OTEL_BSP_MAX_QUEUE_SIZE must be a whole number/],
  ] as const) assert.throws(() => loadConfig(env), (error: Error) => error instanceof ConfigError && message.test(error.message))
})

test('DATABASE_URL selects PostgreSQL and wins over DB_PATH; both URL schemes are taken', () => {
  assert.equal(loadConfig({ DATABASE_URL: 'postgres://chat:pw@db:5432/chat', DB_PATH: '/data/chat.db' }).databaseUrl, 'postgres://chat:pw@db:5432/chat')
  assert.equal(loadConfig({ DATABASE_URL: 'postgresql://db/chat' }).databaseUrl, 'postgresql://db/chat')
  assert.equal(loadConfig({}).databaseUrl, null)
})

test('.env fills in what the environment does not set', () => {
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-env-'))
  writeFileSync(join(folder, '.env'), 'DEFAULT_MODEL=from-file\nCHAT_OLLAMA_TEST_ONLY=1\n')
  const env = readEnvironment(join(folder, '.env'))
  assert.equal(env.DEFAULT_MODEL, process.env.DEFAULT_MODEL ?? 'from-file')
  assert.equal(env.CHAT_OLLAMA_TEST_ONLY, '1')
  assert.equal(readEnvironment(join(folder, 'missing.env')).CHAT_OLLAMA_TEST_ONLY, undefined)
})

test('the server refuses to start on a bad value: one line on stderr, exit code 1', () => {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'lib/server.ts'], {
    env: { ...process.env, PORT: '0', DB_PATH: ':memory:', SSE_HEARTBEAT: 'often' },
    encoding: 'utf8',
    timeout: 20_000,
  })
  assert.equal(result.status, 1)
  assert.equal(result.stderr, 'chat-ollama: SSE_HEARTBEAT="often" is not valid: expected a duration such as 250ms, 30s, 5m or 1h\n')
})
