/**
 * Several instances on one PostgreSQL database, through faults of the database: its connections
 * terminated mid-reply, the whole server stopped for a while, and an instance stopping while its
 * clients follow another's reply. What a client was sent is what is stored; followers get every
 * event in order and end with the end that happened. Real server processes on a throwaway
 * cluster of this file's own (it is stopped here), one fake Ollama.
 */
import assert from 'node:assert/strict'
import { after, before, test, type TestContext } from 'node:test'
import postgres from 'postgres'
import { PostgresStore } from '../lib/store/postgres/store.ts'
import { fakeOllama, sseEvents, takeText, within, type SseEvent } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { postgresCluster, type PostgresCluster } from './support/postgres.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'
import { pacedChat as pacedChatOn, rest } from './support/paced-chat.ts'

const cleanups: Array<() => unknown> = []
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext
let cluster: PostgresCluster
let fake: FakeOllama
let databaseUrl: string
let sql: postgres.Sql
let ann: Record<string, string>

before(async () => {
  fake = await fakeOllama(suite)
  cluster = await postgresCluster()
  databaseUrl = await cluster.newDatabase()
  sql = postgres(databaseUrl, { onnotice: () => {}, max: 2 })
  const store = new PostgresStore(databaseUrl, { maxConnections: 2, instanceId: 'test' })
  cleanups.push(() => sql.end(), () => store.close())
  await store.access.addUser('ann', 'user')
  ann = { authorization: `Bearer ${(await store.access.createKey('ann')).key}` }
})

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

const instance = (t: TestContext, id: string, env: Record<string, string> = {}) =>
  spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: fake.url, DATABASE_URL: databaseUrl, INSTANCE_ID: id, CHECKPOINT_INTERVAL: '10ms', AUTH: 'required', RATE_LIMIT: '0', ...env } })

const pacedChat = (url: string) => pacedChatOn(fake, url, ann)

const textOf = (events: SseEvent[]) => events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join('')
const idsOf = (events: SseEvent[]) => events.map((event) => Number(event.id!.split(':')[1]))
const follow = async (url: string, sessionId: string) => {
  const response = await fetch(`${url}/v1/sessions/${sessionId}/stream`, { headers: ann })
  assert.equal(response.status, 200)
  return sseEvents(response)
}

test('connections terminated mid-reply (pg_terminate_backend): no batch is lost, the follower on another instance gets every id in order and the owner\'s end; requests meanwhile are 503, never 500', async (t) => {
  const [a, b] = await Promise.all([instance(t, 'term-a'), instance(t, 'term-b')])
  const { live, seen, sessionId, replyId } = await pacedChat(a.url)
  const follower = await follow(b.url, sessionId)
  const terminate = () => sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chat-ollama:term-a'`
  const owner = [...seen]
  for (const token of ['two ', 'three ', 'four']) {
    await terminate()
    fake.release(1)
    owner.push(...(await takeText(live, token)))
    const answer = await fetch(`${a.url}/v1/sessions`, { headers: ann })
    assert.ok(answer.status === 200 || answer.status === 503, `GET /v1/sessions after the connections went: ${answer.status}`)
  }
  await terminate()
  fake.release(1)
  owner.push(...(await rest(live)))
  assert.equal(owner.at(-1)!.data.type, 'done')
  const followed = await within(20_000, 'the follower to end', rest(follower))
  assert.deepEqual(idsOf(followed), idsOf(followed).map((_, index) => index + 1), 'every id, in order, none skipped')
  assert.deepEqual(followed.at(-1), owner.at(-1), 'the owner\'s end, same id')
  assert.equal(textOf(followed), textOf(owner))
  const [row] = await sql`SELECT status, content FROM messages WHERE id = ${replyId}`
  assert.deepEqual({ ...row }, { status: 'complete', content: 'one two three four' })
})

test('the database stopped for longer than a lease, then back: no instance sweeps another\'s live reply, the owner stores all it sent while it was down, the follower ends with the owner\'s end and text', async (t) => {
  // Heartbeats every second: each instance's lease runs out during the outage (3.5 s), and none
  // runs out for a busy machine's slowness outside it.
  const env = { INSTANCE_LEASE: '3s' }
  const [a, b] = await Promise.all([instance(t, 'down-a', env), instance(t, 'down-b', env)])
  const { live, seen, sessionId, replyId } = await pacedChat(a.url)
  const follower = await follow(b.url, sessionId)
  const followedBefore = await takeText(follower, 'one ')
  cluster.stop()
  t.after(() => {
    // Back for the other tests, whatever happened here.
    try {
      cluster.start()
    } catch {}
  })
  // While the database is down the owner goes on: its client is sent the rest of the text.
  fake.release(4)
  const owner = [...seen, ...(await takeText(live, 'two three four'))]
  await new Promise((resolve) => setTimeout(resolve, 3500))
  cluster.start()
  // The reply's end comes once its final write has landed.
  owner.push(...(await within(30_000, 'the owner\'s end', rest(live))))
  const why = () => `${JSON.stringify(owner.at(-1)!.data)}\n${a.lines.filter((line) => /"(warn|error)"/.test(line) && !line.includes('writing it again')).join('\n').slice(0, 3000)}`
  assert.equal(owner.at(-1)!.data.type, 'done', why())
  const followed = [...followedBefore, ...(await within(30_000, 'the follower to end', rest(follower)))]
  assert.deepEqual(followed.at(-1), owner.at(-1))
  assert.equal(textOf(followed), 'one two three four')
  const [row] = await sql`SELECT status, content FROM messages WHERE id = ${replyId}`
  assert.deepEqual({ ...row }, { status: 'complete', content: 'one two three four' }, 'what the client was sent is what is stored')
  // Both instances renewed and serve on.
  await within(20_000, 'both leases', (async () => {
    while ((await sql`SELECT count(*)::int AS live FROM instances WHERE lease_until > now() AND id IN ('down-a', 'down-b')`)[0]!.live !== 2) await new Promise((resolve) => setTimeout(resolve, 50))
  })())
  assert.equal((await sql`SELECT count(*)::int AS n FROM messages WHERE status = 'interrupted'`)[0]!.n, 0, 'nothing was interrupted')
})

test('an instance stopping (SIGTERM) while its clients follow another instance\'s reply: they are told to reconnect and it exits without waiting for that reply; reconnected elsewhere they get the rest', async (t) => {
  const [a, b] = await Promise.all([instance(t, 'stay-a'), instance(t, 'leave-b', { SHUTDOWN_GRACE: '30s' })])
  const { live, sessionId } = await pacedChat(a.url)
  const follower = await follow(b.url, sessionId)
  const before = await takeText(follower, 'one ')
  b.child.kill('SIGTERM')
  const closing = await within(20_000, 'the follower to be closed', rest(follower))
  assert.deepEqual(closing.map((event) => event.data.type), ['reconnect'])
  assert.equal(closing[0]!.id, null, 'no id: the client keeps its Last-Event-ID')
  assert.equal((await b.exited).code, 0, 'exited while the reply it followed still runs')
  const again = sseEvents(await fetch(`${a.url}/v1/sessions/${sessionId}/stream`, { headers: { ...ann, 'last-event-id': before.at(-1)!.id! } }))
  fake.release(4)
  const owner = await rest(live)
  assert.deepEqual(await rest(again), owner)
})
