/**
 * Several instances on one PostgreSQL database: real server processes (lib/server.ts) on one
 * throwaway cluster and one fake Ollama. Any instance follows, refuses, cancels and counts what
 * another runs; a dead instance's replies are closed by the others; SIGTERM drains.
 */
import assert from 'node:assert/strict'
import { after, before, test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import postgres from 'postgres'
import { PostgresStore } from '../lib/store/postgres/store.ts'
import { fakeOllama, json, readSse, sseEvents, take, takeText, within } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { postgresCluster } from './support/postgres.ts'
import { SERVER_FROM_SOURCE, spawnServer, type ServerProcess } from './support/process.ts'
import { pacedChat as pacedChatOn, rest } from './support/paced-chat.ts'

interface Shared {
  fake: FakeOllama
  databaseUrl: string
  sql: postgres.Sql
  store: PostgresStore
  /** Three instances: a, b, c. */
  servers: ServerProcess[]
  /** A key of `ann`'s and of `bob`'s. */
  ann: Record<string, string>
  bob: Record<string, string>
}

const cleanups: Array<() => unknown> = []
/** spawnServer and fakeOllama want a test context only to clean up after it. */
const suite = { after: (fn: () => unknown) => cleanups.push(fn) } as unknown as TestContext
let shared: Shared

const LEASE = { INSTANCE_LEASE: '900ms' }

function instanceEnv(databaseUrl: string, fake: FakeOllama, id: string, env: Record<string, string> = {}) {
  return { OLLAMA_HOST: fake.url, DATABASE_URL: databaseUrl, INSTANCE_ID: id, CHECKPOINT_INTERVAL: '10ms', AUTH: 'required', RATE_LIMIT: '0', ...LEASE, ...env }
}

before(async () => {
  const fake = await fakeOllama(suite)
  const databaseUrl = await (await postgresCluster()).newDatabase()
  const sql = postgres(databaseUrl, { onnotice: () => {} })
  const store = new PostgresStore(databaseUrl, { maxConnections: 2, instanceId: 'test' })
  cleanups.push(() => sql.end(), () => store.close())
  await store.ready
  const keyOf = async (name: string) => {
    await store.access.addUser(name, 'user')
    return { authorization: `Bearer ${(await store.access.createKey(name)).key}` }
  }
  const ann = await keyOf('ann')
  const bob = await keyOf('bob')
  const servers = await Promise.all(['a', 'b', 'c'].map((id) => spawnServer(suite, SERVER_FROM_SOURCE, { env: instanceEnv(databaseUrl, fake, id, { MAX_CONCURRENT_CHATS_PER_USER: '2' }) })))
  shared = { fake, databaseUrl, sql, store, servers, ann, bob }
})

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

const post = (url: string, path: string, body: unknown, headers: Record<string, string>) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

const pacedChat = (url: string, headers: Record<string, string>, options: { stalled?: boolean } = {}) => pacedChatOn(shared.fake, url, headers, options)

test('follow from another instance: the same ids and text as the owner sends, after Last-Event-ID too (one not read from the database yet)', async () => {
  const [a, b] = shared.servers
  const { live, seen, sessionId, replyId } = await pacedChat(a!.url, shared.ann)
  // The owner sent these a moment ago: B may not have them in the database yet.
  const resumeAfter = seen.at(-1)!.id!
  const fromStart = sseEvents(await fetch(`${b!.url}/v1/sessions/${sessionId}/stream`, { headers: shared.ann }))
  const resumed = sseEvents(await fetch(`${b!.url}/v1/sessions/${sessionId}/stream`, { headers: { ...shared.ann, 'last-event-id': resumeAfter } }))
  const otherId = sseEvents(await fetch(`${b!.url}/v1/sessions/${sessionId}/stream`, { headers: { ...shared.ann, 'last-event-id': 'some-other-reply:3' } }))
  assert.deepEqual(await take(fromStart, seen.length), seen, 'the events so far, from the database')
  shared.fake.release(4)
  const ownerEvents = [...seen, ...(await rest(live))]
  assert.equal(ownerEvents.at(-1)!.data.type, 'done')
  assert.deepEqual([...seen, ...(await rest(fromStart))], ownerEvents, 'ids and data identical')
  assert.deepEqual(await rest(resumed), ownerEvents.slice(seen.length), 'after Last-Event-ID: exactly the events after it')
  assert.deepEqual(await rest(otherId), ownerEvents, 'an id of another reply: from the start')
  assert.equal(ownerEvents[0]!.data.message_id, replyId)
  assert.equal((await fetch(`${b!.url}/v1/sessions/${sessionId}/stream`, { headers: shared.ann })).status, 404, 'nothing runs once it ended')
})

test('one reply per session everywhere: a second chat or a delete on another instance is 409; someone else\'s session is 404', async () => {
  const [a, b, c] = shared.servers
  const { live, sessionId } = await pacedChat(a!.url, shared.ann)
  const second = await post(b!.url, '/v1/chat', { message: 'me too', session_id: sessionId }, shared.ann)
  assert.equal(second.status, 409)
  assert.equal((await json(second)).type, 'https://api.chat-ollama.com/errors/conflict')
  assert.equal((await fetch(`${c!.url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: shared.ann })).status, 409)
  assert.equal((await fetch(`${c!.url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: shared.bob })).status, 404)
  assert.equal((await fetch(`${b!.url}/v1/sessions/${sessionId}/stream`, { headers: shared.bob })).status, 404)
  assert.equal((await post(b!.url, `/v1/sessions/${sessionId}/cancel`, {}, shared.bob)).status, 404)
  shared.fake.release(4)
  assert.equal((await rest(live)).at(-1)!.data.type, 'done')
  assert.equal((await fetch(`${c!.url}/v1/sessions/${sessionId}`, { method: 'DELETE', headers: shared.ann })).status, 204)
})

test('cancel from another instance stops Ollama on the owner; the reply ends cancelled with its text', async () => {
  const [a, b] = shared.servers
  const { live, sessionId, replyId } = await pacedChat(a!.url, shared.ann)
  const request = shared.fake.chatRequests().at(-1)!
  const cancelled = await json(await post(b!.url, `/v1/sessions/${sessionId}/cancel`, {}, shared.ann))
  assert.deepEqual(cancelled, { session_id: sessionId, message_id: replyId, status: 'cancelled', content: 'one ' })
  assert.ok(request.abortedAt !== null, 'Ollama\'s request was aborted')
  const end = (await rest(live)).at(-1)!
  assert.equal(end.data.type, 'done')
  assert.equal(end.data.done_reason, 'cancelled')
  const [row] = await shared.sql`SELECT status, content FROM messages WHERE id = ${replyId}`
  assert.deepEqual({ ...row }, { status: 'cancelled', content: 'one ' })
})

test('limits and keys are shared: MAX_CONCURRENT_CHATS_PER_USER and RATE_LIMIT count every instance; a revoked key stops everywhere at once', async () => {
  const [a, b, c] = shared.servers
  const first = await pacedChat(a!.url, shared.ann)
  const second = await pacedChat(b!.url, shared.ann, { stalled: true })
  const third = await post(c!.url, '/v1/chat', { message: 'a third' }, shared.ann)
  assert.equal(third.status, 429, 'two replies running on two instances: the third is refused on a third one')
  assert.match((await json(third)).detail, /MAX_CONCURRENT_CHATS_PER_USER/)
  const bobs = await post(c!.url, '/v1/chat', { message: 'bob is not ann' }, shared.bob)
  assert.equal(bobs.status, 200, 'another user is served')
  assert.equal((await readSse(bobs)).events.at(-1)!.data.type, 'done')
  shared.fake.release(4)
  assert.equal((await post(c!.url, `/v1/sessions/${second.sessionId}/cancel`, {}, shared.ann)).status, 200)
  await Promise.all([rest(first.live), rest(second.live)])
  // Given back just after each reply is stored.
  await within(10_000, 'every slot given back', (async () => {
    while ((await shared.sql`SELECT coalesce(sum(running), 0)::int AS n FROM chat_slot_counts`)[0]!.n !== 0) await new Promise((resolve) => setTimeout(resolve, 10))
  })())

  // RATE_LIMIT: the buckets are in the database. These two run with 3 requests a minute.
  const env = (id: string) => instanceEnv(shared.databaseUrl, shared.fake, id, { RATE_LIMIT: '3/min' })
  const limited = await Promise.all(['r1', 'r2'].map((id) => spawnServer(suite, SERVER_FROM_SOURCE, { env: env(id) })))
  const statuses: number[] = []
  for (const server of [...limited, ...limited]) statuses.push((await fetch(`${server.url}/v1/sessions`, { headers: shared.bob })).status)
  assert.deepEqual(statuses, [200, 200, 200, 429])
  for (const server of limited) server.child.kill('SIGTERM')

  const { info: { id: keyId }, key } = await shared.store.access.createKey('ann')
  const headers = { authorization: `Bearer ${key}` }
  for (const server of shared.servers) assert.equal((await fetch(`${server.url}/v1/sessions`, { headers })).status, 200)
  await shared.store.access.revokeKey(keyId)
  for (const server of shared.servers) assert.equal((await fetch(`${server.url}/v1/sessions`, { headers })).status, 401, 'no instance keeps a revoked key')
})

test('Responses: a background response created on one instance is resumed on a second and cancelled on a third', async () => {
  const [a, b, c] = shared.servers
  const clientOf = (server: ServerProcess) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: shared.ann.authorization!.slice(7), maxRetries: 0 })
  shared.fake.next({ tokens: ['alpha ', 'beta ', 'gamma'], paced: true })
  shared.fake.release(2)
  const created = await clientOf(a!).responses.create({ model: 'llama3.2', input: 'go on', background: true })
  // Resumed on B after the first two events (created, in_progress), with the SDK.
  const resumed = await clientOf(b!).responses.retrieve(created.id, { stream: true, starting_after: 1 })
  const events: any[] = []
  const reading = (async () => {
    for await (const event of resumed) events.push(event)
  })()
  await within(10_000, 'the first text on B', (async () => {
    while (!events.some((event) => event.type === 'response.output_text.delta')) await new Promise((resolve) => setTimeout(resolve, 5))
  })())
  assert.deepEqual(events.slice(0, 3).map((event) => [event.type, event.sequence_number]), [
    ['response.output_item.added', 2], ['response.content_part.added', 3], ['response.output_text.delta', 4],
  ])
  assert.equal(events[2].delta, 'alpha ')
  const cancelled = await clientOf(c!).responses.cancel(created.id)
  assert.equal(cancelled.status, 'cancelled')
  await within(10_000, 'the end on B', reading)
  assert.equal(events.at(-1).type, 'response.failed', 'a cancelled response ends with response.failed, as on one instance')
  assert.equal(events.at(-1).response.status, 'cancelled')
  assert.equal((await clientOf(b!).responses.retrieve(created.id)).status, 'cancelled')
})

test('kill -9 of an owner: the others close its reply as interrupted with the saved text, while a survivor\'s reply runs on, also across a restart of the killed one', async (t) => {
  const { fake, databaseUrl, sql, ann } = shared
  const [doomed, survivor] = await Promise.all(['doomed', 'survivor'].map((id) => spawnServer(t, SERVER_FROM_SOURCE, { env: instanceEnv(databaseUrl, fake, id) })))
  const lost = await pacedChat(doomed!.url, ann, { stalled: true })
  const kept = await pacedChat(survivor!.url, ann)
  await within(10_000, 'the checkpoint', (async () => {
    while ((await sql`SELECT content FROM messages WHERE id = ${lost.replyId}`)[0]?.content !== 'one ') await new Promise((resolve) => setTimeout(resolve, 10))
  })())
  const follower = sseEvents(await fetch(`${survivor!.url}/v1/sessions/${lost.sessionId}/stream`, { headers: { ...ann, 'last-event-id': lost.seen.at(-1)!.id! } }))
  doomed!.child.kill('SIGKILL')
  await doomed!.exited
  // The follower's stream ends once the lease has run out and a survivor has closed the reply.
  const ended = await within(20_000, 'the dead owner\'s reply to be closed', rest(follower))
  assert.equal(ended.length, 1)
  assert.equal(ended[0]!.data.type, 'error')
  assert.equal(ended[0]!.id, `${lost.replyId}:${lost.seen.length + 1}`)
  const [closed] = await sql`SELECT status, content FROM messages WHERE id = ${lost.replyId}`
  assert.deepEqual({ ...closed }, { status: 'interrupted', content: 'one ' })
  assert.equal((await sql`SELECT status FROM messages WHERE id = ${kept.replyId}`)[0]!.status, 'streaming', 'the survivor\'s reply runs on')

  const restarted = await spawnServer(t, SERVER_FROM_SOURCE, { env: instanceEnv(databaseUrl, fake, 'doomed') })
  assert.equal((await json(await fetch(`${restarted.url}/health`))).instance_id, 'doomed')
  assert.equal((await sql`SELECT status FROM messages WHERE id = ${kept.replyId}`)[0]!.status, 'streaming', 'a restart touches only its own id\'s replies')
  fake.release(4)
  const events = await rest(kept.live)
  assert.equal(events.at(-1)!.data.type, 'done')
  assert.equal((await sql`SELECT status, content FROM messages WHERE id = ${kept.replyId}`)[0]!.content, 'one two three four')
})

test('SIGTERM mid-reply: the instance stops taking chats, finishes the reply, exits 0; a follower on another instance sees it end normally', async (t) => {
  const { fake, databaseUrl, ann } = shared
  const [leaving, staying] = await Promise.all(['leaving', 'staying'].map((id) => spawnServer(t, SERVER_FROM_SOURCE, { env: instanceEnv(databaseUrl, fake, id, { SHUTDOWN_GRACE: '30s' }) })))
  const { live, sessionId } = await pacedChat(leaving!.url, ann)
  const follower = sseEvents(await fetch(`${staying!.url}/v1/sessions/${sessionId}/stream`, { headers: ann }))
  leaving!.child.kill('SIGTERM')
  await leaving!.logged('shutting down')
  fake.release(4)
  const ownerEvents = await rest(live)
  assert.equal(ownerEvents.at(-1)!.data.type, 'done')
  const followed = await rest(follower)
  assert.equal(followed.at(-1)!.data.type, 'done')
  assert.equal(followed.at(-1)!.id, ownerEvents.at(-1)!.id)
  assert.equal((await leaving!.exited).code, 0)
  const health = await json(await fetch(`${staying!.url}/health`))
  assert.equal(health.instance_id, 'staying')
  assert.equal((await readSse(await post(staying!.url, '/v1/chat', { message: 'still here' }, ann))).events.at(-1)!.data.type, 'done')
})

test('a streaming row its live owner no longer runs (its final write failed) is closed by that owner, so the session takes chats again', async () => {
  const [a] = shared.servers
  // A user of its own: the chat slots other tests' users give back, on other instances, after
  // their replies' last event, cannot be counted here.
  const cy = await shared.store.access.addUser('cy', 'user')
  const headers = { authorization: `Bearer ${(await shared.store.access.createKey('cy')).key}` }
  const session = await shared.store.chats.createSession({ ownerId: cy.id })
  // What a failed final write leaves: a reply of instance a's, still streaming, that a no longer runs.
  await shared.sql`
    INSERT INTO messages (id, session_id, role, content, model, status, created_at, owner_instance)
    VALUES (${crypto.randomUUID()}, ${session.id}, 'assistant', 'half a reply', 'llama3.2', 'streaming', now() - interval '2 minutes', 'a')`
  // (While it stands, the session refuses chats with 409, as 'one reply per session everywhere' shows; how long that lasts
  // here is up to a's next heartbeat, so it is not asserted.)
  await within(10_000, 'the stray row to be closed', (async () => {
    while ((await shared.sql`SELECT status FROM messages WHERE session_id = ${session.id}`)[0]!.status === 'streaming') await new Promise((resolve) => setTimeout(resolve, 20))
  })())
  const [row] = await shared.sql`SELECT status, content FROM messages WHERE session_id = ${session.id}`
  assert.deepEqual({ ...row }, { status: 'interrupted', content: 'half a reply' })
  const { events } = await readSse(await post(a!.url, '/v1/chat', { message: 'free again', session_id: session.id }, headers))
  assert.equal(events.at(-1)!.data.type, 'done')
})

test('a chat retried with its Idempotency-Key on other instances: followed from its start while it runs on the first, then answered as stored; Ollama asked once', async () => {
  const [a, b, c] = shared.servers
  // A user of its own: other tests' slots, given back on other instances, are not counted here.
  await shared.store.access.addUser('dee', 'user')
  const headers = { authorization: `Bearer ${(await shared.store.access.createKey('dee')).key}`, 'idempotency-key': 'across-instances' }
  const asked = shared.fake.chatRequests().length
  shared.fake.next({ tokens: ['one ', 'two ', 'three ', 'four'], paced: true })
  shared.fake.release(1)
  const first = sseEvents(await post(a!.url, '/v1/chat', { message: 'only once' }, headers))
  const seen = await takeText(first, 'one ')
  const retried = sseEvents(await post(b!.url, '/v1/chat', { message: 'only once' }, headers))
  assert.deepEqual(await take(retried, seen.length), seen, 'the same reply, from its start, through the database')
  shared.fake.release(4)
  const ownerEvents = [...seen, ...(await rest(first))]
  assert.equal(ownerEvents.at(-1)!.data.type, 'done')
  assert.deepEqual([...seen, ...(await rest(retried))], ownerEvents)
  const stored = (await readSse(await post(c!.url, '/v1/chat', { message: 'only once' }, headers))).events
  assert.deepEqual([stored[0], stored.at(-1)], [ownerEvents[0], ownerEvents.at(-1)], 'stored: the same start and done, same ids')
  assert.equal(shared.fake.chatRequests().length, asked + 1)
})
