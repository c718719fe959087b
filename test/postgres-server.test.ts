/**
 * The whole server on PostgreSQL (DATABASE_URL), on a throwaway cluster this test starts itself:
 * chats, sessions, keys and OpenAI's Responses over real sockets; one server per database; a
 * kill -9 mid-reply that loses nothing acknowledged; the admin command on the same database.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import postgres from 'postgres'
import healthFunction from '../functions/health.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import { createAppContext, openStore } from '../lib/app.ts'
import { silentLogger } from '../lib/observability/log.ts'
import { startServer } from '../lib/server.ts'
import { fakeOllama, json, parseSse, sseEvents, takeText, testConfig, within } from './support/app.ts'
import { postgresCluster } from './support/postgres.ts'
import { PROJECT_ROOT, SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

async function database(t: TestContext) {
  const url = await (await postgresCluster()).newDatabase()
  const sql = postgres(url, { onnotice: () => {} })
  t.after(() => sql.end())
  return { url, sql }
}

const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

test('on PostgreSQL: /health names the store; a three-turn chat, its session and messages; keys; Responses chained with the SDK', async (t) => {
  const fake = await fakeOllama(t)
  const { url: databaseUrl, sql } = await database(t)
  const running = await startServer(testConfig({ OLLAMA_HOST: fake.hostPort, DATABASE_URL: databaseUrl, AUTH: 'required', HOST: '127.0.0.1', RATE_LIMIT: '0' }), { log: silentLogger })
  t.after(() => running.shutdown())
  const { url, app } = running
  const health = await json(await fetch(`${url}/health`))
  assert.equal(health.store, 'postgres')
  assert.equal(health.services.database, 'healthy')

  await app.access.store.addUser('ann', 'user')
  const { key } = await app.access.store.createKey('ann')
  const auth = { authorization: `Bearer ${key}` }
  assert.equal((await fetch(`${url}/v1/sessions`)).status, 401)

  let sessionId: string | undefined
  for (const message of ['first', 'second', 'third']) {
    const { events } = parseSse(await (await post(url, '/v1/chat', { message, ...(sessionId ? { session_id: sessionId } : {}) }, auth)).text())
    assert.equal(events.at(-1)!.data.type, 'done')
    sessionId = events[0]!.data.session_id
  }
  assert.equal(fake.chatRequests().at(-1)!.body.messages.length, 5, 'the third turn carried the whole history')
  const messages = await json(await fetch(`${url}/v1/sessions/${sessionId}/messages`, { headers: auth }))
  assert.deepEqual(messages.messages.map((message: any) => [message.role, message.content, message.status]), [
    ['user', 'first', 'complete'], ['assistant', 'You said: first', 'complete'],
    ['user', 'second', 'complete'], ['assistant', 'You said: second', 'complete'],
    ['user', 'third', 'complete'], ['assistant', 'You said: third', 'complete'],
  ])
  const [row] = await sql`SELECT title, message_count FROM sessions WHERE id = ${sessionId!}`
  assert.deepEqual({ ...row }, { title: 'first', message_count: 6 })

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 })
  fake.next({ tokens: ['Paris.'] })
  const first = await client.responses.create({ model: 'llama3.2', instructions: 'Be terse.', input: 'Capital of France?' })
  fake.next({ tokens: ['Lyon.'] })
  const second = await client.responses.create({ model: 'llama3.2', previous_response_id: first.id, input: 'And the second city?' })
  assert.equal(second.output_text, 'Lyon.')
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.content), ['Capital of France?', 'Paris.', 'And the second city?'])
  assert.equal((await client.responses.retrieve(first.id)).output_text, 'Paris.')
})

test('on PostgreSQL: kill -9 mid-reply, and the restart (same INSTANCE_ID) closes the reply as interrupted with its checkpointed text at once', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['saved ', 'text ', 'never'], paced: true } })
  const { url: databaseUrl, sql } = await database(t)
  // A lease far longer than the test: only the restart itself can close the reply.
  const env = { OLLAMA_HOST: fake.url, DATABASE_URL: databaseUrl, CHECKPOINT_INTERVAL: '10ms', INSTANCE_ID: 'api-1', INSTANCE_LEASE: '10m' }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })

  fake.release(2)
  const live = sseEvents(await post(first.url, '/v1/chat', { message: 'keep this' }))
  const [start] = await takeText(live, 'saved text ')
  const replyId: string = start!.data.message_id
  // Wait for the checkpoint itself, then kill.
  await within(10_000, 'the checkpoint', (async () => {
    while ((await sql`SELECT content FROM messages WHERE id = ${replyId}`)[0]?.content !== 'saved text ') await new Promise((resolve) => setTimeout(resolve, 10))
  })())
  first.child.kill('SIGKILL')
  await first.exited

  const next = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const [reply] = await sql`SELECT status, content FROM messages WHERE id = ${replyId}`
  assert.deepEqual({ ...reply }, { status: 'interrupted', content: 'saved text ' })
  const [user] = await sql`SELECT content FROM messages WHERE role = 'user'`
  assert.equal(user!.content, 'keep this', 'the user message, acknowledged before Ollama was asked, is kept')
  next.child.kill('SIGTERM')
  assert.equal((await next.exited).code, 0)
})

test('on PostgreSQL: the admin command reads DATABASE_URL; a key it revokes stops working on the running server\'s next request', async (t) => {
  const { url: databaseUrl } = await database(t)
  const running = await startServer(testConfig({ OLLAMA_HOST: '127.0.0.1:9', DATABASE_URL: databaseUrl, AUTH: 'required', RATE_LIMIT: '0' }), { log: silentLogger })
  t.after(() => running.shutdown())
  const admin = (...args: string[]) =>
    execFileSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'lib/admin.ts'), ...args], { env: { ...process.env, DATABASE_URL: databaseUrl, HOST: '127.0.0.1' }, encoding: 'utf8' })
  admin('user', 'add', 'cy')
  const lines = admin('key', 'create', 'cy').trim().split('\n')
  const key = lines.at(-1)!
  const keyId = lines[0]!.split('\t')[0]!
  const headers = { authorization: `Bearer ${key}` }
  assert.equal((await fetch(`${running.url}/v1/sessions`, { headers })).status, 200)
  admin('key', 'revoke', keyId)
  assert.equal((await fetch(`${running.url}/v1/sessions`, { headers })).status, 401)
})

test('on PostgreSQL: a database that cannot be reached is a 503 database problem with Retry-After, and /health says unhealthy', async (t) => {
  // A port nothing listens on: every connection is refused.
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
  const config = testConfig({ OLLAMA_HOST: '127.0.0.1:9', DATABASE_URL: `postgres://postgres@127.0.0.1:${closed}/nothing` })
  const app = createAppContext(config, { log: silentLogger, database: await openStore(config) })
  t.after(() => app.database.close())
  const created = await sessionsCreate.fetch(new Request('http://localhost/v1/sessions', { method: 'POST' }), app)
  assert.equal(created.status, 503)
  assert.ok(Number(created.headers.get('retry-after')) >= 1)
  const problem = await json(created)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/database')
  assert.doesNotMatch(problem.detail, /ECONNREFUSED|127\.0\.0\.1/, 'nothing of the connection reaches the client')
  const health = await healthFunction.fetch(new Request('http://localhost/health'), app)
  assert.equal(health.status, 503)
  assert.equal((await json(health)).services.database, 'unhealthy')
})
