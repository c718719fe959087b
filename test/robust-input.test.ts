import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { test } from 'node:test'
import { LOCAL_USER_ID } from '../lib/store/chat-store.ts'
import fc from 'fast-check'
import { createDispatcher } from '../lib/http/dispatcher.ts'
import { FUNCTIONS } from '../lib/server.ts'
import type { AppContext } from '../lib/context.ts'
import { chatRequest, fakeOllama, json, readSse, rowCounts, storedRows, testApp, testServer } from './support/app.ts'

/** Everything stored, as one string: equal before and after means nothing changed. */
async function storedState(app: AppContext): Promise<string> {
  const sessions = await storedRows(app, 'SELECT id, title, updated_at, message_count FROM sessions ORDER BY id')
  const messages = await storedRows(app, 'SELECT id, session_id, role, content, status FROM messages ORDER BY id')
  return JSON.stringify([sessions, messages])
}

const SUFFIXES = ['', '/messages', '/stream', '/cancel']

test('generated requests at every endpoint: never a 5xx, problems for 4xx, and a 4xx changes nothing', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['ok'] } })
  const app = await testApp(t, fake, { MAX_MESSAGE_CHARS: '200', MAX_BODY_BYTES: '4KiB' })
  const dispatcher = createDispatcher(FUNCTIONS, app)
  const existing = (await app.store.createSession({ title: 'existing', system: 'be brief' })).id
  await app.store.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: existing, content: 'hello' })

  const pathId = fc.oneof(fc.constant(existing), fc.uuid().map(String), fc.string({ maxLength: 40 }).map(encodeURIComponent), fc.constantFrom('..', '%00', '%ZZ', 'a/b', ' '))
  const path = fc.oneof(
    fc.constantFrom('/health', '/v1/chat', '/v1/models', '/v1/sessions', '/', '/v1', '/v1/sessions/'),
    fc.tuple(pathId, fc.constantFrom(...SUFFIXES)).map(([id, suffix]) => `/v1/sessions/${id}${suffix}`),
  )
  const query = fc.dictionary(fc.constantFrom('limit', 'cursor', 'x', '__proto__'), fc.oneof(fc.string({ maxLength: 30 }), fc.integer().map(String), fc.constant('')), { maxKeys: 3 })
  const deep = fc.integer({ min: 1, max: 3000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth))
  const hostileObject = fc.record({
    message: fc.oneof(fc.string({ maxLength: 250 }), fc.integer(), fc.constant(null), fc.constant('\ud800 lone')),
    session_id: fc.oneof(fc.uuid().map(String), fc.string({ maxLength: 10 }), fc.constant(existing)),
    model: fc.oneof(fc.constantFrom('llama3.2', 'qwen3:8b', 'nope', ''), fc.string({ maxLength: 10 })),
    stream: fc.oneof(fc.boolean(), fc.string({ maxLength: 3 })),
    title: fc.oneof(fc.string({ maxLength: 210 }), fc.integer()),
    options: fc.oneof(fc.object({ maxDepth: 2 }), fc.record({ temperature: fc.double(), max_tokens: fc.oneof(fc.integer(), fc.constant(1e308)), top_p: fc.double(), stop: fc.anything() }, { requiredKeys: [] })),
  }, { requiredKeys: [] })
  const bodyText = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
    hostileObject.map((value) => JSON.stringify(value)),
    fc.constant('{"__proto__":{"polluted":true},"message":"x","constructor":{"prototype":{"a":1}}}'),
    deep,
    fc.string({ maxLength: 200 }),
    fc.constant('9'.repeat(400)),
    fc.constant(`{"message":"${'x'.repeat(4100)}"}`),
  )
  const body = fc.oneof(
    fc.constant(null),
    bodyText.map((text) => new TextEncoder().encode(text)),
    fc.uint8Array({ maxLength: 64 }),
    fc.constant(new Uint8Array([0x7b, 0x22, 0x6d, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])),
  )
  const contentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/problem+json', '')
  const method = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS', 'HEAD')
  const headers = fc.record({ 'x-request-id': fc.string({ maxLength: 200 }), 'last-event-id': fc.string({ maxLength: 20 }), origin: fc.constantFrom('https://x.example', 'null') }, { requiredKeys: [] })

  await fc.assert(
    fc.asyncProperty(method, path, query, body, contentType, headers, async (verb, route, params, payload, type, extra) => {
      const url = new URL(`http://localhost${route}`)
      for (const [key, value] of Object.entries(params)) url.searchParams.append(key, value)
      const withBody = payload !== null && verb !== 'GET' && verb !== 'HEAD'
      const requestHeaders: Record<string, string> = { ...extra }
      if (type !== undefined && withBody) requestHeaders['content-type'] = type
      const before = await storedState(app)
      const response = await dispatcher.fetch(new Request(url, { method: verb, headers: requestHeaders, ...(withBody ? { body: payload } : {}) }))
      const text = await response.text()
      assert.ok(response.status < 500, `${verb} ${url.pathname}${url.search} -> ${response.status} ${text}`)
      if (response.status >= 400) {
        // /v1/models is OpenAI's route too: its errors come in OpenAI's shape.
        const openAIRoute = url.pathname === '/v1/models'
        assert.equal(response.headers.get('content-type'), openAIRoute ? 'application/json' : 'application/problem+json')
        if (verb !== 'HEAD') assert.ok(openAIRoute ? typeof JSON.parse(text).error.code === 'string' : JSON.parse(text).status === response.status, text)
        assert.equal(await storedState(app), before, `${verb} ${url.pathname} -> ${response.status} changed the store`)
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined)
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 400), seed: process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : undefined },
  )
  await fake.waitFor(() => app.generations.size === 0)
})

test('hostile text is stored and returned exactly, with the SSE framing intact', async (t) => {
  const fake = await fakeOllama(t)
  // A context that holds the longest message (32,000 characters, about 8,000 tokens) and its echo.
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '65536' })
  const texts = [
    "'); DROP TABLE messages; --",
    'Robert"); DELETE FROM sessions WHERE ("1"="1',
    '\n\ndata: {"type":"done","session_id":"x"}\n\n',
    'id: 999\r\nevent: error\r\n\r\n: ping',
    'control \u0001\u001b[2J characters and \u2028\u2029 separators',
    '🎉 emoji, combining e\u0301, RTL \u202e text',
    'x'.repeat(32_000),
  ]
  const dispatcher = createDispatcher(FUNCTIONS, app)
  for (const text of texts) {
    const { events, raw } = await readSse(await dispatcher.fetch(chatRequest({ message: text })))
    // One data line per event: nothing in the text split an event.
    assert.equal(raw.split('\n').filter((line) => line.startsWith('data: ')).length, events.length)
    const reply = events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join('')
    assert.equal(reply, `You said: ${text}`)
    const sessionId = events[0]!.data.session_id
    const page = await json(await dispatcher.fetch(new Request(`http://localhost/v1/sessions/${sessionId}/messages`)))
    assert.deepEqual(page.messages.map((message: { content: string }) => message.content), [text, `You said: ${text}`])
  }
})

test('U+0000, which PostgreSQL cannot store, is refused with 400 on every route and on both backends alike, and nothing is stored', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const dispatcher = createDispatcher(FUNCTIONS, app)
  const post = (path: string, body: unknown) => dispatcher.fetch(new Request(`http://localhost${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }))
  for (const [path, body] of [
    ['/v1/chat', { message: 'NUL\u0000inside' }],
    ['/v1/chat', { message: 'fine', system: 'a\u0000b' }],
    ['/v1/sessions', { title: '\u0000' }],
    ['/v1/responses', { model: 'llama3.2', input: [{ role: 'user', content: 'x\u0000' }] }],
    ['/v1/conversations', { metadata: { 'key\u0000': 'v' } }],
  ] as const) {
    const response = await post(path, body)
    assert.equal(response.status, 400, path)
    assert.match(JSON.stringify(await json(response)), /U\+0000/)
  }
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(fake.chatRequests().length, 0)
})

test('a lone surrogate, which SQLite cannot store exactly, is refused with 400 instead of changed', async (t) => {
  const app = await testApp(t, null)
  const dispatcher = createDispatcher(FUNCTIONS, app)
  const response = await dispatcher.fetch(chatRequest({ message: 'broken \ud83d text' }))
  assert.equal(response.status, 400)
  assert.match(JSON.stringify((await json(response)).errors), /lone surrogate/)
  assert.equal((await app.store.listSessions(LOCAL_USER_ID, 1, null)).items.length, 0)
})

test('over sockets: a body one byte over MAX_BODY_BYTES is 413; a slow-loris body is cut at READ_TIMEOUT', async (t) => {
  const { url, server } = await testServer(t, null, { MAX_BODY_BYTES: '1KiB', READ_TIMEOUT: '300ms' })
  const port = Number(new URL(url).port)
  // A route without images (POST /v1/chat takes more: docs/images.md).
  const justOver = JSON.stringify({ title: 'x'.repeat(1024 - 12 + 1) })
  assert.equal(Buffer.byteLength(justOver), 1025)
  const over = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: justOver })
  assert.equal(over.status, 413)
  const exact = JSON.stringify({ title: 'x'.repeat(1024 - 12) })
  assert.notEqual((await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: exact })).status, 413)

  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`POST /v1/sessions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"ti`)
  let reply = ''
  socket.on('data', (data) => (reply += data.toString()))
  // One more byte now and then, never the whole body: the server must not wait for ever.
  const drip = setInterval(() => socket.write('t'), 50)
  await new Promise((resolve) => socket.once('close', resolve))
  clearInterval(drip)
  assert.match(reply, /^HTTP\/1\.1 408 /)
  assert.equal(server.listening, true)
})

test('the server stays healthy after bad input', async (t) => {
  const fake = await fakeOllama(t)
  const { url } = await testServer(t, fake)
  await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{'.repeat(100_000) })
  await fetch(`${url}/v1/sessions/${randomUUID()}/messages?limit=${'9'.repeat(500)}`)
  const health = await json(await fetch(`${url}/health`))
  assert.equal(health.status, 'healthy')
  assert.equal((await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":"still here?","stream":false}' })).status, 200)
})
