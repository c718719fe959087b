import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import type { TestContext } from 'node:test'
import { loadConfig, type Config } from '../../lib/shared/config.ts'
import type { AppContext, AppParts } from '../../lib/context.ts'
import { createAppContext, openStore } from '../../lib/app.ts'
import { silentLogger, type Logger } from '../../lib/observability/log.ts'
import { startServer, type RunningServer } from '../../lib/server.ts'
import { SqliteChatStore } from '../../lib/store/sqlite/chat-store.ts'
import { SqliteStore } from '../../lib/store/sqlite/store.ts'
import postgres from 'postgres'
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from './fake-ollama.ts'
import { postgresCluster } from './postgres.ts'

export type Env = Record<string, string>

/** A logger that keeps every entry, for tests that check what was logged. */
export function recordingLogger(): Logger & { entries: Array<{ level: string; message: string; fields: Record<string, unknown> }> } {
  const entries: Array<{ level: string; message: string; fields: Record<string, unknown> }> = []
  const at = (level: string) => (message: string, fields: Record<string, unknown> = {}) => void entries.push({ level, message, fields })
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

/** A configuration for tests: in-memory database, quiet logs, the given Ollama. */
export function testConfig(env: Env = {}): Config {
  return loadConfig({ DB_PATH: ':memory:', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', ...env })
}

/** A fake Ollama that stops when the test ends. */
export async function fakeOllama(t: TestContext, options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  const fake = await startFakeOllama(options)
  t.after(() => fake.close())
  return fake
}

/**
 * The backend the suites run on: SQLite by default, PostgreSQL with `STORE=postgres` (npm test
 * runs the API suites both ways), each test on a database of its own in a throwaway cluster.
 */
export const STORE: 'sqlite' | 'postgres' = process.env.STORE === 'postgres' ? 'postgres' : 'sqlite'

/** For a test that checks SQLite's own internals (query plans, triggers, its error codes): skipped, with the reason, on the PostgreSQL pass. */
export const sqliteOnly = (why: string) => (STORE === 'postgres' ? { skip: `SQLite only: ${why}` } : {})

/** What selects the test's backend: nothing for SQLite, a new database's URL for PostgreSQL. */
export async function storeEnv(): Promise<Env> {
  return STORE === 'postgres' ? { DATABASE_URL: await (await postgresCluster()).newDatabase() } : {}
}

/** An AppContext over a new store (in-memory SQLite, or a new PostgreSQL database) and the fake Ollama, for calling a function's fetch. */
export async function testApp(t: TestContext, fake: FakeOllama | null, env: Env = {}, log: Logger = silentLogger, parts: AppParts = {}): Promise<AppContext> {
  const config = testConfig({ OLLAMA_HOST: fake?.hostPort ?? '127.0.0.1:9', ...(await storeEnv()), ...env })
  const app = createAppContext(config, { log, database: await openStore(config), ...parts })
  t.after(async () => {
    app.approvals.close()
    await app.ingestion.close()
    return app.database.close()
  })
  // Migrated before the test looks at the tables itself.
  await app.database.ping()
  return app
}

/** The whole server on a loopback port (on the suite's backend), shut down when the test ends. */
export async function testServer(t: TestContext, fake: FakeOllama | null, env: Env = {}): Promise<RunningServer> {
  const running = await startServer(testConfig({ OLLAMA_HOST: fake?.hostPort ?? '127.0.0.1:9', ...(await storeEnv()), ...env }), { log: silentLogger })
  t.after(() => running.shutdown())
  return running
}

/** A Request from `METHOD /path`, with a JSON body when one is given (itty's toReq, in our shape). */
export function toRequest(route: string, body?: unknown, headers: Record<string, string> = {}): Request {
  const [method, path] = route.split(' ') as [string, string]
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
  }
  return new Request(`http://localhost${path}`, init)
}

export interface SseEvent {
  id: string | null
  data: any
}

/** Reads a whole SSE body into its events (comments are counted, not returned). */
export async function readSse(response: Response): Promise<{ events: SseEvent[]; pings: number; raw: string }> {
  const raw = await response.text()
  return { ...parseSse(raw), raw }
}

export function parseSse(raw: string): { events: SseEvent[]; pings: number } {
  const events: SseEvent[] = []
  let pings = 0
  for (const block of raw.split('\n\n')) {
    if (!block) continue
    let id: string | null = null
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line === ': ping') pings++
      else if (line.startsWith('id: ')) id = line.slice(4)
      else if (line.startsWith('data: ')) data.push(line.slice(6))
      else if (/^retry: \d+$/.test(line)) continue
      else throw new Error(`unexpected SSE line: ${JSON.stringify(line)}`)
    }
    if (data.length > 1) throw new Error('an event had more than one data line')
    if (data.length === 1) events.push({ id, data: JSON.parse(data[0]!) })
  }
  return { events, pings }
}

/** A response's JSON body, loosely typed for assertions. */
export async function json(response: Response): Promise<any> {
  return response.json()
}

/** Yields a streaming response's SSE events as they arrive (`: ping` comments as `{ping: true}`). */
export async function* sseEvents(response: Response): AsyncGenerator<SseEvent | { ping: true }> {
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of response.body!) {
    buffer += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end + 2)
      buffer = buffer.slice(end + 2)
      const { events, pings } = parseSse(block)
      for (let index = 0; index < pings; index++) yield { ping: true }
      yield* events
    }
  }
}

/** A chat request body's defaults filled in. */
export const chatRequest = (body: Record<string, unknown>, headers: Record<string, string> = {}) => toRequest('POST /v1/chat', body, headers)

/** The SQLite database under a test app, for assertions on exactly what is stored. */
export const sqliteDb = (app: AppContext): DatabaseSync => (app.database as SqliteStore).db

/** The SQLite chat store under a test app, for its prepared statements' query plans. */
export const sqliteChats = (app: AppContext): SqliteChatStore => (app.database as SqliteStore).chats

const postgresClients = new Map<string, postgres.Sql>()

/**
 * Runs `text` (with `?` placeholders) against the app's database, whichever backend it is, for
 * assertions on exactly what is stored; the rows as plain objects.
 */
export async function storedRows(app: AppContext, text: string, ...params: Array<string | number | null>): Promise<any[]> {
  if (app.database.kind === 'sqlite') return sqliteDb(app).prepare(text).all(...params).map((row) => ({ ...row }))
  const url = app.config.databaseUrl!
  let sql = postgresClients.get(url)
  if (!sql) postgresClients.set(url, (sql = postgres(url, { max: 1, idle_timeout: 1, onnotice: () => {} })))
  let index = 0
  return (await sql.unsafe(text.replace(/\?/g, () => `$${++index}`), params)).map((row) => ({ ...row }))
}

/** Counts rows in the store's tables, to show that a refused request changed nothing. */
export async function rowCounts(app: AppContext): Promise<{ sessions: number; messages: number }> {
  const count = async (table: string) => Number((await storedRows(app, `SELECT count(*) AS n FROM ${table}`))[0]!.n)
  return { sessions: await count('sessions'), messages: await count('messages') }
}

/** Every message of a session as stored, oldest first. */
export async function storedMessages(app: AppContext, sessionId: string): Promise<any[]> {
  const insertionOrder = app.database.kind === 'sqlite' ? 'rowid' : 'seq'
  return storedRows(app, `SELECT role, content, status, model, tokens_used, prompt_tokens, done_reason FROM messages WHERE session_id = ? ORDER BY created_at, ${insertionOrder}`, sessionId)
}

/**
 * A problem answer as it would read for any id: what differs per request (its id, time, path) out
 * and `id` replaced, so another user's id can be shown to answer exactly like a missing one.
 */
export async function problemFor(response: Response, id: string): Promise<string> {
  const { request_id: _request, timestamp: _time, instance: _instance, ...problem } = await json(response)
  return JSON.stringify(problem).replaceAll(id, '<id>')
}

/** `promise`, or a rejection naming `what` once `ms` have passed: no wait in a test is unbounded. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

type LiveEvents = AsyncGenerator<SseEvent | { ping: true }>

/** Reads events from a live stream until `count` have arrived (pings skipped) or it ends; bounded in time. */
export function take(events: LiveEvents, count: number, ms = 10_000): Promise<SseEvent[]> {
  return within(ms, `${count} events`, (async () => {
    const taken: SseEvent[] = []
    while (taken.length < count) {
      const { value, done } = await events.next()
      if (done) break
      if ('data' in value) taken.push(value)
    }
    return taken
  })())
}

/** The text of the token events among `events`. */
export const tokenText = (events: SseEvent[]) => events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join('')

/** Reads events from a live stream until their token text is `text`; fails if the stream ends first or time runs out. */
export function takeText(events: LiveEvents, text: string, ms = 10_000): Promise<SseEvent[]> {
  return within(ms, `the text ${JSON.stringify(text)}`, (async () => {
    const taken: SseEvent[] = []
    while (tokenText(taken) !== text) {
      const { value, done } = await events.next()
      if (done) throw new Error(`the stream ended with ${JSON.stringify(tokenText(taken))} instead of ${JSON.stringify(text)}`)
      if ('data' in value) taken.push(value)
    }
    return taken
  })())
}

/** A server that asks for API keys (AUTH=required) on a database file, with users and keys made in-process. */
export async function authServer(t: TestContext, fake: FakeOllama | null, env: Env = {}) {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-auth-')), 'chat.db')
  const running = await testServer(t, fake, { AUTH: 'required', DB_PATH: dbPath, ...env })
  const store = running.app.access.store
  /** A new user (of `role`) and a key of theirs. */
  const userWithKey = async (name: string, role: 'admin' | 'user' = 'user') => {
    const user = await store.addUser(name, role)
    const { key, info } = await store.createKey(name)
    return { user, key, keyId: info.id, headers: { authorization: `Bearer ${key}` } }
  }
  /** The store variables the admin command needs to reach this server's database. */
  const storeVariables = running.app.config.databaseUrl ? { DATABASE_URL: running.app.config.databaseUrl } : { DB_PATH: dbPath }
  return { ...running, dbPath, storeVariables, userWithKey }
}
