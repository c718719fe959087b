import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { LOCAL_USER_ID } from '../lib/store/chat-store.ts'
import chat from '../functions/chat.ts'
import sessionCancel from '../functions/session-cancel.ts'
import sessionStream from '../functions/session-stream.ts'
import { chatRequest, fakeOllama, json, readSse, sqliteDb, sqliteOnly, sseEvents, storedMessages, take, takeText, testApp, testServer, tokenText, toRequest, within } from './support/app.ts'

const TOKENS = Array.from({ length: 12 }, (_, index) => `t${index} `)
const FULL_REPLY = TOKENS.join('')

const postChat = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal ? { signal } : {}) })

test('a client that disconnects after two tokens: the reply goes on and is stored complete', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const { url, app } = await testServer(t, fake)
  const client = new AbortController()
  fake.release(2)
  const response = await postChat(url, { message: 'long story' }, client.signal)
  const events = await takeText(sseEvents(response), 't0 t1 ')
  client.abort()
  const { session_id: sessionId, message_id: messageId } = events[0]!.data
  assert.equal((await app.store.getMessage(messageId))?.status, 'streaming')
  fake.release(TOKENS.length)
  await fake.waitFor(() => app.generations.size === 0)
  const stored = (await app.store.getMessage(messageId))!
  assert.equal(stored.status, 'complete')
  assert.equal(stored.content, FULL_REPLY)
  assert.equal(fake.chatRequests()[0]!.abortedAt, null, 'Ollama was stopped when the client left')
  assert.equal((await storedMessages(app, sessionId)).length, 2)
})

test('resume after Last-Event-ID: the two parts join into exactly the reply; without it, everything is replayed', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const { url } = await testServer(t, fake)
  const client = new AbortController()
  fake.release(1)
  const live = sseEvents(await postChat(url, { message: 'go' }, client.signal))
  const first = await takeText(live, 't0 ')
  fake.release(1)
  first.push(...(await takeText(live, 't1 ')))
  client.abort()
  const sessionId = first[0]!.data.session_id
  const lastId = first.at(-1)!.id!

  const [resumed, replayed] = await Promise.all([
    fetch(`${url}/v1/sessions/${sessionId}/stream`, { headers: { 'last-event-id': lastId } }),
    fetch(`${url}/v1/sessions/${sessionId}/stream`),
  ])
  fake.release(TOKENS.length)
  assert.equal(resumed.status, 200)
  assert.equal(resumed.headers.get('content-type'), 'text/event-stream')
  const rest = (await readSse(resumed)).events
  const sequence = (id: string | null) => Number(id!.split(':')[1])
  assert.equal(rest[0]!.id!.split(':')[0], first[0]!.data.message_id)
  assert.equal(sequence(rest[0]!.id), sequence(lastId) + 1, 'the ids go on from where the first client stopped')
  assert.equal(tokenText(first) + tokenText(rest), FULL_REPLY)
  assert.equal(rest.at(-1)!.data.type, 'done')

  const all = (await readSse(replayed)).events
  assert.equal(all[0]!.data.type, 'start')
  assert.deepEqual(all.slice(0, first.length), first, 'the replay holds the same events with the same ids')
  assert.equal(tokenText(all), FULL_REPLY)
})

test('two clients following one generation get the same events', async (t) => {
  // Paced: the reply is still running when the followers attach, however slow the machine.
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const { url } = await testServer(t, fake)
  fake.release(1)
  const original = sseEvents(await postChat(url, { message: 'share' }))
  const head = await takeText(original, 't0 ')
  const sessionId = head[0]!.data.session_id
  const followers = await Promise.all([1, 2].map(() => fetch(`${url}/v1/sessions/${sessionId}/stream`)))
  fake.release(TOKENS.length)
  const [a, b] = await Promise.all(followers.map(async (response) => (await within(10_000, 'a follower', readSse(response))).events))
  const rest = await take(original, 1000)
  assert.deepEqual(a, b)
  assert.deepEqual(a, [...head, ...rest])
  assert.equal(tokenText(a!), FULL_REPLY)
})

test('cancel aborts the request to Ollama, stores the partial text as cancelled, and ends every stream with done: cancelled', async (t) => {
  // The fake sends two tokens and then nothing: only an abort ends its request.
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, stallAfterTokens: 2 } })
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  const original = sseEvents(await chat.fetch(chatRequest({ message: 'stop me', session_id: sessionId }), app))
  // Chunks that arrive together may leave as one event: wait for the text, not a count of events.
  await takeText(original, 't0 t1 ')
  const follower = await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`), app)

  const cancelled = await sessionCancel.fetch(toRequest(`POST /v1/sessions/${sessionId}/cancel`), app)
  assert.equal(cancelled.status, 200)
  const body = await json(cancelled)
  assert.deepEqual({ ...body, message_id: typeof body.message_id }, { session_id: sessionId, message_id: 'string', status: 'cancelled', content: 't0 t1 ' })
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)

  for (const events of [await take(original, 100), (await readSse(follower)).events]) {
    const last = events.at(-1)!.data
    assert.equal(last.type, 'done')
    assert.equal(last.done_reason, 'cancelled')
    assert.equal(last.message_id, body.message_id)
  }
  assert.deepEqual((await storedMessages(app, sessionId)).at(-1), {
    role: 'assistant', content: 't0 t1 ', status: 'cancelled', model: 'llama3.2', tokens_used: null, prompt_tokens: null, done_reason: 'cancelled',
  })
  assert.equal(app.generations.size, 0)
  assert.equal((await sessionCancel.fetch(toRequest(`POST /v1/sessions/${sessionId}/cancel`), app)).status, 404)
})

test('cancel while Ollama has not answered yet: the request is aborted and the chat ends cancelled', async (t) => {
  const fake = await fakeOllama(t, { scenario: { headersDelayMs: 5000 } })
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  const pending = chat.fetch(chatRequest({ message: 'hello', session_id: sessionId }), app)
  await fake.waitFor(() => fake.chatRequests().length === 1)
  const cancelled = await json(await sessionCancel.fetch(toRequest(`POST /v1/sessions/${sessionId}/cancel`), app))
  assert.equal(cancelled.status, 'cancelled')
  const { events } = await readSse(await pending)
  assert.deepEqual(events.map((event) => event.data.type), ['start', 'done'])
  assert.equal(events[1]!.data.done_reason, 'cancelled')
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
  assert.deepEqual((await storedMessages(app, sessionId)).map((message) => [message.role, message.status]), [['user', 'complete'], ['assistant', 'cancelled']])
})

test('stream and cancel are 404 when nothing runs, and 400 for an id that is not a UUID', async (t) => {
  const app = await testApp(t, null)
  const id = (await app.store.createSession()).id
  for (const fn of [sessionStream, sessionCancel]) {
    const method = fn === sessionStream ? 'GET' : 'POST'
    const suffix = fn === sessionStream ? 'stream' : 'cancel'
    const missing = await fn.fetch(toRequest(`${method} /v1/sessions/${id}/${suffix}`), app)
    assert.equal(missing.status, 404)
    assert.equal((await json(missing)).type, 'https://api.chat-ollama.com/errors/not_found')
    assert.equal((await fn.fetch(toRequest(`${method} /v1/sessions/x/${suffix}`), app)).status, 400)
  }
})

test('the text is checkpointed while tokens flow, one UPDATE per interval rather than per token', sqliteOnly('counts the writes with a SQLite temp trigger'), async (t) => {
  const many = Array.from({ length: 200 }, (_, index) => `w${index} `)
  const fake = await fakeOllama(t, { scenario: { tokens: many, stallAfterTokens: 200 } })
  const app = await testApp(t, fake, { CHECKPOINT_INTERVAL: '40ms' })
  sqliteDb(app).exec(`
    CREATE TEMP TABLE content_writes (n INTEGER);
    CREATE TEMP TRIGGER count_content_writes AFTER UPDATE OF content ON main.messages BEGIN INSERT INTO content_writes VALUES (1); END;
  `)
  const sessionId = randomUUID()
  const response = await chat.fetch(chatRequest({ message: 'go', session_id: sessionId }), app)
  const stream = sseEvents(response)
  const messageId = (await take(stream, 1))[0]!.data.message_id
  await fake.waitFor(() => String(sqliteDb(app).prepare('SELECT content FROM messages WHERE id = ?').get(messageId)?.content) === many.join(''))
  assert.equal((await app.store.getMessage(messageId))?.status, 'streaming')
  const writes = Number(sqliteDb(app).prepare('SELECT count(*) AS n FROM content_writes').get()!.n)
  assert.ok(writes >= 1 && writes <= 3, `${writes} content writes for 200 tokens`)
  await app.generations.cancel(sessionId)
  await take(stream, 1000)
})

test('finished generations leave the registry', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  for (let index = 0; index < 20; index++) await readSse(await chat.fetch(chatRequest({ message: `m${index}` }), app))
  assert.equal(app.generations.size, 0)
  await chat.fetch(chatRequest({ message: 'json', stream: false }), app)
  assert.equal(app.generations.size, 0)
})

test('once shutdown has begun, new chats are refused with 503 and Retry-After, and nothing is stored', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  await app.generations.drain(0)
  const refused = await chat.fetch(chatRequest({ message: 'too late' }), app)
  assert.equal(refused.status, 503)
  assert.ok(refused.headers.get('retry-after'))
  assert.equal((await app.store.listSessions(LOCAL_USER_ID, 10, null)).items.length, 0)
})

test('a client gone before Ollama answered: the reply still runs and is stored complete', async (t) => {
  // Paced: Ollama sends nothing, headers included, until the client has gone.
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const { url, app } = await testServer(t, fake)
  const client = new AbortController()
  const pending = postChat(url, { message: 'answer me later' }, client.signal).catch((error: Error) => error)
  await fake.waitFor(() => fake.chatRequests().length === 1)
  client.abort()
  assert.equal(((await pending) as Error).name, 'AbortError')
  fake.release(TOKENS.length + 1)
  await fake.waitFor(() => app.generations.size === 0)
  const [session] = (await app.store.listSessions(LOCAL_USER_ID, 1, null)).items
  const messages = (await app.store.listMessages(session!.id, 10, null)).items
  assert.deepEqual(messages.map((message) => [message.role, message.content, message.status]), [
    ['user', 'answer me later', 'complete'],
    ['assistant', FULL_REPLY, 'complete'],
  ])
  assert.equal(fake.chatRequests()[0]!.abortedAt, null, 'Ollama was stopped when the client left')
})
