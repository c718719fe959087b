import type { TestContext } from 'node:test'
import { loadConfig, type Config } from '../../lib/config.ts'
import { createAppContext, type AppContext } from '../../lib/context.ts'
import { silentLogger, type Logger } from '../../lib/log.ts'
import { startServer, type RunningServer } from '../../lib/server.ts'
import { ChatStore } from '../../lib/store.ts'
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from './fake-ollama.ts'

export type Env = Record<string, string>

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

/** An AppContext over an in-memory store and the fake Ollama, for calling a function's fetch. */
export function testApp(t: TestContext, fake: FakeOllama | null, env: Env = {}, log: Logger = silentLogger): AppContext {
  const config = testConfig({ OLLAMA_HOST: fake?.hostPort ?? '127.0.0.1:9', ...env })
  const app = createAppContext(config, { log, store: new ChatStore(config.dbPath) })
  t.after(() => app.store.close())
  return app
}

/** The whole server on a loopback port, shut down when the test ends. */
export async function testServer(t: TestContext, fake: FakeOllama | null, env: Env = {}): Promise<RunningServer> {
  const running = await startServer(testConfig({ OLLAMA_HOST: fake?.hostPort ?? '127.0.0.1:9', ...env }), { log: silentLogger })
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
  id: number | null
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
    let id: number | null = null
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line === ': ping') pings++
      else if (line.startsWith('id: ')) id = Number(line.slice(4))
      else if (line.startsWith('data: ')) data.push(line.slice(6))
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

/** Counts rows in the store's tables, to show that a refused request changed nothing. */
export function rowCounts(app: AppContext): { sessions: number; messages: number } {
  const count = (table: string) => Number(app.store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get()!.n)
  return { sessions: count('sessions'), messages: count('messages') }
}

/** Every message of a session as stored, oldest first. */
export function storedMessages(app: AppContext, sessionId: string): any[] {
  return app.store.db
    .prepare('SELECT role, content, status, model, tokens_used, prompt_tokens, done_reason FROM messages WHERE session_id = ? ORDER BY created_at, rowid')
    .all(sessionId)
    .map((row) => ({ ...row }))
}
