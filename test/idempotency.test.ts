/**
 * Safe retries: a request sent again with the same Idempotency-Key and body gets the first one's
 * outcome instead of a second one. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import OpenAI from 'openai'
import regenerate from '../functions/session-regenerate.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import { authServer, chatRequest, fakeOllama, json, readSse, rowCounts, sseEvents, takeText, testApp, testServer, tokenText, toRequest, within } from './support/app.ts'

const TOKENS = Array.from({ length: 8 }, (_, index) => `t${index} `)
const withKey = (key: string) => ({ 'idempotency-key': key })

test('a JSON chat sent twice with one key: one turn stored, one Ollama request, the same answer both times', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const body = { message: 'Only once, please', stream: false }
  const first = await json(await chat.fetch(chatRequest(body, withKey('retry-1')), app))
  const again = await chat.fetch(chatRequest(body, withKey('retry-1')), app)
  assert.equal(again.status, 200)
  assert.deepEqual(await json(again), first, 'the very same answer, context included')
  assert.equal(fake.chatRequests().length, 1)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 2 })
  // Another key is another request.
  await json(await chat.fetch(chatRequest(body, withKey('retry-2')), app))
  assert.equal(fake.chatRequests().length, 2)
})

test('a streamed chat cut mid-way and sent again: followed from its start while it runs, then its stored events with the same ids, ending in done; Ollama asked once', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const { url, app } = await testServer(t, fake)
  const send = (signal?: AbortSignal) => fetch(`${url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'stream-1' },
    body: JSON.stringify({ message: 'tell me a story' }),
    ...(signal ? { signal } : {}),
  })
  const client = new AbortController()
  fake.release(2)
  const cut = await takeText(sseEvents(await send(client.signal)), 't0 t1 ')
  client.abort()
  const start = cut[0]!

  // Sent again while the reply runs: the same reply, from its start.
  const retried = sseEvents(await send())
  const head = await takeText(retried, 't0 t1 ')
  assert.deepEqual(head[0], start, 'the same start event, same id')
  fake.release(TOKENS.length)
  const live = [...head, ...(await within(10_000, 'the retried stream to end', (async () => {
    const rest = []
    for await (const event of retried) if (!('ping' in event)) rest.push(event)
    return rest
  })()))]
  assert.equal(live.at(-1)!.data.type, 'done')
  assert.equal(tokenText(live), TOKENS.join(''))

  // Sent again once it has ended: the stored reply, as the events a client that never left saw.
  const stored = (await readSse(await send())).events
  assert.deepEqual(stored.map((event) => event.data.type), ['start', 'token', 'done'])
  assert.deepEqual(stored[0], start)
  assert.equal(stored[1]!.data.content, TOKENS.join(''))
  assert.equal(stored[1]!.id, live.at(-2)!.id, 'the text carries the id of the last token event')
  assert.deepEqual(stored[2], live.at(-1), 'the same done event, same id')
  assert.equal(fake.chatRequests().length, 1, 'Ollama was asked once')
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 2 })

  // The same retry wanting JSON is another request (another body): refused, not run.
  const other = await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'stream-1' }, body: JSON.stringify({ message: 'tell me a story', stream: false }) })
  assert.equal(other.status, 422)
  assert.match((await json(other)).type, /idempotency_mismatch$/)
})

test('the same key with another body or route is 422 idempotency_mismatch; a bad key is 400; nothing runs', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  await json(await chat.fetch(chatRequest({ message: 'first', stream: false }, withKey('k')), app))
  const before = await rowCounts(app)
  for (const response of [
    await chat.fetch(chatRequest({ message: 'second', stream: false }, withKey('k')), app),
    await sessionsCreate.fetch(toRequest('POST /v1/sessions', { title: 'x' }, withKey('k')), app),
  ]) {
    assert.equal(response.status, 422)
    assert.match((await json(response)).type, /idempotency_mismatch$/)
  }
  for (const key of ['x'.repeat(256), 'tab\there', 'é']) {
    const response = await chat.fetch(chatRequest({ message: 'third', stream: false }, withKey(key)), app)
    assert.equal(response.status, 400, JSON.stringify(key))
  }
  assert.deepEqual(await rowCounts(app), before)
  assert.equal(fake.chatRequests().length, 1)
})

test('a request that failed before its reply began is not remembered: its retry runs again', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  fake.next({ status: 500, errorMessage: 'out of memory' })
  const failed = await chat.fetch(chatRequest({ message: 'try me', stream: false }, withKey('flaky')), app)
  assert.equal(failed.status, 502)
  const retried = await chat.fetch(chatRequest({ message: 'try me', stream: false }, withKey('flaky')), app)
  assert.equal(retried.status, 200)
  assert.equal((await json(retried)).content, 'You said: try me')
  assert.equal(fake.chatRequests().length, 2)
  // A 404 (a model Ollama does not have) is forgotten too.
  const missing = await chat.fetch(chatRequest({ message: 'x', model: 'nope:1b', stream: false }, withKey('model')), app)
  assert.equal(missing.status, 404)
  assert.equal((await chat.fetch(chatRequest({ message: 'x', model: 'nope:1b', stream: false }, withKey('model')), app)).status, 404)
})

test('POST /v1/sessions and a regeneration run once per key', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const create = () => sessionsCreate.fetch(toRequest('POST /v1/sessions', { title: 'Once' }, withKey('session-1')), app)
  const first = await create()
  const again = await create()
  assert.equal(again.status, 201)
  assert.equal(again.headers.get('location'), first.headers.get('location'))
  assert.deepEqual(await json(again), await json(first))
  assert.equal((await rowCounts(app)).sessions, 1)

  const reply = await json(await chat.fetch(chatRequest({ message: 'Q', stream: false }), app))
  const regenerated = () => regenerate.fetch(toRequest(`POST /v1/sessions/${reply.session_id}/messages/${reply.id}/regenerate`, { stream: false }, withKey('regen-1')), app)
  const one = await json(await regenerated())
  const two = await json(await regenerated())
  assert.deepEqual(two, one)
  assert.equal(fake.chatRequests().length, 2, 'the chat and one regeneration')
})

test('keys of different users never meet: the same key and body make one chat each', async (t) => {
  const fake = await fakeOllama(t)
  const server = await authServer(t, fake)
  const [alice, bob] = [await server.userWithKey('alice'), await server.userWithKey('bob')]
  const send = (headers: Record<string, string>) => fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', 'idempotency-key': 'shared' },
    body: JSON.stringify({ message: 'mine', stream: false }),
  })
  const a = await json(await send(alice.headers))
  const b = await json(await send(bob.headers))
  assert.notEqual(a.session_id, b.session_id)
  assert.equal(fake.chatRequests().length, 2)
  assert.equal((await json(await send(bob.headers))).id, b.id, 'bob\'s retry gets bob\'s reply')
})

test('a retry while the first request still waits for Ollama is 409 with Retry-After, and runs nothing', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const app = await testApp(t, fake)
  const body = { message: 'slow model load', stream: false }
  const first = chat.fetch(chatRequest(body, withKey('loading')), app)
  await fake.waitFor(() => fake.chatRequests().length === 1)
  const retry = await chat.fetch(chatRequest(body, withKey('loading')), app)
  assert.equal(retry.status, 409)
  assert.equal(retry.headers.get('retry-after'), '1')
  fake.release(TOKENS.length + 1)
  const answer = await json(await first)
  assert.deepEqual(await json(await chat.fetch(chatRequest(body, withKey('loading')), app)), answer)
  assert.equal(fake.chatRequests().length, 1)
})

test('a retry after the session of its reply was deleted is 404 and makes no new chat', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const body = { message: 'soon gone', stream: false }
  const first = await json(await chat.fetch(chatRequest(body, withKey('gone')), app))
  assert.equal(await app.store.deleteSession(first.session_id, 'local'), 'deleted')
  const retry = await chat.fetch(chatRequest(body, withKey('gone')), app)
  assert.equal(retry.status, 404)
  assert.match((await json(retry)).detail, /session was deleted/)
  assert.equal(fake.chatRequests().length, 1)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
})

test('POST /v1/responses with an Idempotency-Key, from the official SDK: JSON, streamed and background retries get the first response; store: false with a key is refused', async (t) => {
  const fake = await fakeOllama(t)
  const { url } = await testServer(t, fake)
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'local', maxRetries: 0 })
  const once = (key: string) => ({ headers: { 'Idempotency-Key': key } })

  const first = await client.responses.create({ model: 'llama3.2', input: 'once' }, once('resp-json'))
  const again = await client.responses.create({ model: 'llama3.2', input: 'once' }, once('resp-json'))
  assert.deepEqual(again, first)
  assert.equal(fake.chatRequests().length, 1)

  const streamed = async () => {
    const events = []
    for await (const event of await client.responses.create({ model: 'llama3.2', input: 'stream once', stream: true }, once('resp-stream'))) events.push(event)
    return events
  }
  const live = await streamed()
  assert.equal(live.at(-1)!.type, 'response.completed')
  assert.deepEqual(await streamed(), live, 'the same events, sequence numbers included')
  assert.equal(fake.chatRequests().length, 2)

  const background = await client.responses.create({ model: 'llama3.2', input: 'later', background: true }, once('resp-bg'))
  const backgroundAgain = await client.responses.create({ model: 'llama3.2', input: 'later', background: true }, once('resp-bg'))
  assert.equal(backgroundAgain.id, background.id)

  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'other', background: true }, once('resp-bg')), (error: any) => error.status === 422)
  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'x', store: false }, once('resp-unstored')), (error: any) => error.status === 400 && /store: true/.test(error.message))
  await within(10_000, 'the background response to run', fake.waitFor(() => fake.chatRequests().length === 3))
})
