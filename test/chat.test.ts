import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { LOCAL_USER_ID } from '../lib/store/chat-store.ts'
import chat from '../functions/chat.ts'
import { chatRequest, fakeOllama, json, readSse, rowCounts, sseEvents, storedMessages, testApp, toRequest } from './support/app.ts'

test('a streamed reply: SSE headers, start, tokens and done, each with an id, done only once stored', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['Hel', 'lo', ' there'], tokenDelayMs: 5 } })
  const app = await testApp(t, fake)
  const response = await chat.fetch(chatRequest({ message: 'Say hello' }), app)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  assert.equal(response.headers.get('cache-control'), 'no-cache')
  assert.equal(response.headers.get('x-accel-buffering'), 'no')

  const events: any[] = []
  for await (const event of sseEvents(response)) {
    assert.ok('data' in event)
    events.push(event)
    if (event.data.type === 'done') {
      // The reply is stored before `done` is sent, so its id can be fetched at once.
      const stored = await app.store.getMessage(event.data.message_id)
      assert.equal(stored?.status, 'complete')
      assert.equal(stored?.content, 'Hello there')
    }
  }
  const [start, ...rest] = events.map((event) => event.data)
  assert.deepEqual(events.map((event) => event.id), events.map((_, index) => `${start.message_id}:${index + 1}`))
  const done = rest.pop()
  assert.equal(start.type, 'start')
  assert.equal(start.model, 'llama3.2')
  assert.match(start.session_id, /^[0-9a-f-]{36}$/)
  assert.equal(rest.every((event) => event.type === 'token' && event.session_id === start.session_id), true)
  assert.equal(rest.map((event) => event.content).join(''), 'Hello there')
  assert.deepEqual(done, {
    type: 'done',
    session_id: start.session_id,
    message_id: start.message_id,
    total_tokens: done.prompt_tokens + 3,
    prompt_tokens: done.prompt_tokens,
    completion_tokens: 3,
    // Ollama's eval_count over its eval_duration (the fake takes 4.535599 s).
    tokens_per_second: Math.round((3 / 4.535599) * 10) / 10,
    done_reason: 'stop',
    // A model that does not reason (docs/api.md "Reasoning").
    thinking: null,
    thinking_ms: null,
  })
  assert.deepEqual(await storedMessages(app, start.session_id), [
    { role: 'user', content: 'Say hello', status: 'complete', model: null, tokens_used: null, prompt_tokens: null, done_reason: null },
    { role: 'assistant', content: 'Hello there', status: 'complete', model: 'llama3.2', tokens_used: 3, prompt_tokens: done.prompt_tokens, done_reason: 'stop' },
  ])
  assert.equal((await app.store.getMessage(start.user_message_id))?.role, 'user')
})

test('stream:false answers one JSON object with the stored reply', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['Four', '.'] } })
  const app = await testApp(t, fake)
  const response = await chat.fetch(chatRequest({ message: '2+2?', stream: false, model: 'qwen3:8b' }), app)
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.deepEqual(Object.keys(body).sort(), ['content', 'context', 'created_at', 'done_reason', 'id', 'model', 'prompt_tokens', 'session_id', 'thinking', 'thinking_ms', 'tokens_per_second', 'tokens_used'])
  assert.equal(body.content, 'Four.')
  assert.equal(body.model, 'qwen3:8b')
  assert.equal(body.tokens_used, 2)
  assert.equal(body.done_reason, 'stop')
  assert.match(body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  assert.equal((await app.store.getMessage(body.id))?.content, 'Four.')
  assert.equal(fake.chatRequests()[0]!.body.model, 'qwen3:8b')
})

test('three streamed turns keep their history, in order, with token counts', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  let sessionId: string | undefined
  for (const message of ['one', 'two', 'three']) {
    const { events } = await readSse(await chat.fetch(chatRequest({ message, ...(sessionId ? { session_id: sessionId } : {}) }), app))
    sessionId ??= events[0]!.data.session_id
    assert.equal(events.at(-1)!.data.type, 'done')
  }
  const stored = await storedMessages(app, sessionId!)
  assert.deepEqual(stored.map((message) => [message.role, message.content]), [
    ['user', 'one'], ['assistant', 'You said: one'],
    ['user', 'two'], ['assistant', 'You said: two'],
    ['user', 'three'], ['assistant', 'You said: three'],
  ])
  for (const reply of stored.filter((message) => message.role === 'assistant')) {
    assert.equal(reply.tokens_used, 4)
    assert.ok(reply.prompt_tokens > 0)
  }
  const third = fake.chatRequests()[2]!.body
  assert.deepEqual(third.messages, stored.slice(0, 5).map(({ role, content }) => ({ role, content })))
  assert.equal(third.stream, true)
})

test('options are mapped for Ollama, and num_ctx is always sent', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '4096' })
  await readSse(await chat.fetch(chatRequest({ message: 'a' }), app))
  await readSse(await chat.fetch(chatRequest({
    message: 'b',
    options: { temperature: 0.2, max_tokens: 64, top_p: 0.9, top_k: 40, seed: 7, stop: ['\n\n'], num_ctx: 16384 },
  }), app))
  const [first, second] = fake.chatRequests()
  assert.deepEqual(first!.body.options, { num_ctx: 4096 })
  assert.deepEqual(second!.body.options, { num_ctx: 16384, temperature: 0.2, num_predict: 64, top_p: 0.9, top_k: 40, seed: 7, stop: ['\n\n'] })
})

test('a system prompt is stored once, first, and sent first', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  await readSse(await chat.fetch(chatRequest({ message: 'hi', session_id: sessionId, system: 'Be terse.' }), app))
  await readSse(await chat.fetch(chatRequest({ message: 'again', session_id: sessionId, system: 'Be verbose.' }), app))
  assert.deepEqual((await storedMessages(app, sessionId)).map((message) => message.role), ['system', 'user', 'assistant', 'user', 'assistant'])
  assert.deepEqual(fake.chatRequests()[1]!.body.messages[0], { role: 'system', content: 'Be terse.' })
})

test('an unknown session id creates that session; its first message sets the title', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const sessionId = randomUUID().toUpperCase()
  const message = 'Explain the difference between processes and threads in operating systems\nwith examples'
  const { events } = await readSse(await chat.fetch(chatRequest({ message, session_id: sessionId }), app))
  assert.equal(events[0]!.data.session_id, sessionId.toLowerCase())
  const session = await app.store.getSession(sessionId.toLowerCase(), LOCAL_USER_ID)
  assert.equal(session?.title, 'Explain the difference between processes and threads in')
  assert.equal(session?.message_count, 2)
  await readSse(await chat.fetch(chatRequest({ message: 'Another topic', session_id: sessionId }), app))
  assert.equal((await app.store.getSession(sessionId.toLowerCase(), LOCAL_USER_ID))?.title, session?.title)
})

test('text of any kind keeps the SSE framing and is stored as sent', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const message = 'line one\n\ndata: {"type":"done"}\r\nid: 99\n: ping\n\u2028 emoji 🎉 control \u0007 and \'; DROP TABLE messages; --'
  const { events } = await readSse(await chat.fetch(chatRequest({ message }), app))
  const text = events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join('')
  assert.equal(text, `You said: ${message}`)
  const sessionId = events[0]!.data.session_id
  assert.deepEqual((await storedMessages(app, sessionId)).map((row) => row.content), [message, `You said: ${message}`])
})

test('each invalid field is a 400 validation problem naming it, and nothing is stored', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake, { MAX_MESSAGE_CHARS: '10', ALLOWED_MODELS: 'llama3.2,qwen3:8b' })
  const cases: Array<[unknown, string]> = [
    [{}, 'message'],
    [{ message: '' }, 'message'],
    [{ message: '   \n ' }, 'message'],
    [{ message: 42 }, 'message'],
    [{ message: 'x'.repeat(11) }, 'message'],
    [{ message: 'ok', session_id: 'not-a-uuid' }, 'session_id'],
    [{ message: 'ok', model: 'mistral' }, 'model'],
    [{ message: 'ok', model: '' }, 'model'],
    [{ message: 'ok', stream: 'yes' }, 'stream'],
    [{ message: 'ok', system: 7 }, 'system'],
    [{ message: 'ok', options: { temperature: 2.5 } }, 'options.temperature'],
    [{ message: 'ok', options: { temperature: -0.1 } }, 'options.temperature'],
    [{ message: 'ok', options: { max_tokens: 0 } }, 'options.max_tokens'],
    [{ message: 'ok', options: { max_tokens: 1_000_001 } }, 'options.max_tokens'],
    [{ message: 'ok', options: { max_tokens: 1.5 } }, 'options.max_tokens'],
    [{ message: 'ok', options: { top_p: 1.1 } }, 'options.top_p'],
    [{ message: 'ok', options: { top_k: 'many' } }, 'options.top_k'],
    [{ message: 'ok', options: { stop: 'x' } }, 'options.stop'],
    [{ message: 'ok', options: { stop: [1] } }, 'options.stop.0'],
    [{ message: 'ok', options: { num_ctx: 0 } }, 'options.num_ctx'],
    [{ message: 'ok', options: { mirostat: 1 } }, 'options.mirostat'],
    [{ message: 'ok', options: [] }, 'options'],
    [{ message: 'ok', sesion_id: randomUUID() }, 'sesion_id'],
    [[{ message: 'ok' }], ''],
    ['"just a string"', ''],
  ]
  for (const [body, path] of cases) {
    const response = await chat.fetch(chatRequest(body as Record<string, unknown>), app)
    assert.equal(response.status, 400, JSON.stringify(body))
    const problem = await json(response)
    assert.equal(problem.type, 'https://api.chat-ollama.com/errors/validation')
    assert.ok(problem.errors.some((error: { path: string }) => error.path === path), `${JSON.stringify(body)} -> ${JSON.stringify(problem.errors)}`)
  }
  // Ten characters after trimming is within the limit.
  assert.equal((await chat.fetch(chatRequest({ message: `  ${'x'.repeat(10)}  `, stream: false }), app)).status, 200)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 2 })
  assert.equal(fake.chatRequests().length, 1)
})

test('malformed JSON is 400, a body that is not JSON 415, and neither stores anything', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const malformed = await chat.fetch(toRequest('POST /v1/chat', '{"message": "hi"', { 'content-type': 'application/json' }), app)
  assert.equal(malformed.status, 400)
  const text = await chat.fetch(toRequest('POST /v1/chat', 'message=hi', { 'content-type': 'application/x-www-form-urlencoded' }), app)
  assert.equal(text.status, 415)
  const bodiless = await chat.fetch(toRequest('POST /v1/chat'), app)
  assert.equal(bodiless.status, 400)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
})

/** Sends one chat that fails before its first token and returns the problem and what was stored. */
async function failBeforeFirstToken(t: import('node:test').TestContext, scenario: import('./support/fake-ollama.ts').Scenario | null, env: Record<string, string> = {}, body: Record<string, unknown> = {}) {
  const fake = scenario ? await fakeOllama(t, { scenario }) : null
  const app = await testApp(t, fake, env)
  const sessionId = randomUUID()
  const response = await chat.fetch(chatRequest({ message: 'hello?', session_id: sessionId, ...body }), app)
  assert.equal(response.headers.get('content-type'), 'application/problem+json')
  return { response, problem: await json(response), stored: await storedMessages(app, sessionId), app }
}

test('a model Ollama does not have is 404 model_not_found, and nothing is stored', async (t) => {
  const { response, problem, stored, app } = await failBeforeFirstToken(t, {}, {}, { model: 'nope' })
  assert.equal(response.status, 404)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/model_not_found')
  assert.equal(problem.detail, "model 'nope' not found")
  assert.deepEqual(stored, [])
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(app.generations.size, 0)
})

test("model names are matched the way Ollama lists them, and a model pulled a moment ago is found", async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest'] })
  const app = await testApp(t, fake)
  for (const model of ['llama3.2', 'Llama3.2:latest', 'library/llama3.2', 'registry.ollama.ai/library/llama3.2:latest']) {
    assert.equal((await chat.fetch(chatRequest({ message: 'hi', model, stream: false }), app)).status, 200, model)
  }
  assert.equal((await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', stream: false }), app)).status, 404)
  fake.models.push('qwen3:8b')
  assert.equal((await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', stream: false }), app)).status, 200)
  // Known models are answered from the list already fetched.
  assert.ok(fake.requests.filter((request) => request.path === '/api/tags').length <= 3)
})

test('an Ollama too slow to list its models does not hold up the chat for OLLAMA_TIMEOUT', { timeout: 10_000 }, async (t) => {
  const fake = await fakeOllama(t)
  fake.tagsDelayMs = 60_000
  // OLLAMA_TIMEOUT is long; only the model check's own short deadline lets this chat through in time.
  const app = await testApp(t, fake, { OLLAMA_TIMEOUT: '1m' })
  const response = await chat.fetch(chatRequest({ message: 'hi', stream: false }), app)
  assert.equal(response.status, 200)
  assert.equal((await json(response)).content, 'You said: hi')
})

test("Ollama's own 404 (a model removed after it was listed) is model_not_found; a first message stores nothing", async (t) => {
  const { response, problem, stored, app } = await failBeforeFirstToken(t, { status: 404, errorMessage: "model 'llama3.2' not found" })
  assert.equal(response.status, 404)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/model_not_found')
  assert.deepEqual(stored, [])
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
})

test('Ollama busy (its 503) is 503 with Retry-After', async (t) => {
  const { response, problem } = await failBeforeFirstToken(t, { status: 503 })
  assert.equal(response.status, 503)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/ollama')
  assert.ok(Number(response.headers.get('retry-after')) > 0)
  assert.match(problem.detail, /busy/)
})

test('Ollama unreachable is 503 with Retry-After naming the host tried and OLLAMA_HOST; a refused first message leaves no session, a later one stays in its session', async (t) => {
  const { response, problem, stored, app } = await failBeforeFirstToken(t, null)
  assert.equal(response.status, 503)
  assert.ok(Number(response.headers.get('retry-after')) > 0)
  assert.match(problem.detail, /unreachable/)
  assert.ok(problem.detail.includes(app.config.ollamaHost), problem.detail)
  assert.match(problem.detail, /OLLAMA_HOST/)
  assert.deepEqual(stored, [])
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  // In a session that exists, the message stays where the user wrote it (the reply never started).
  const session = await app.store.createSession({ ownerId: LOCAL_USER_ID })
  assert.equal((await chat.fetch(chatRequest({ message: 'again?', session_id: session.id }), app)).status, 503)
  assert.deepEqual((await storedMessages(app, session.id)).map((message) => [message.role, message.content]), [['user', 'again?']])
})

test('no answer within OLLAMA_TIMEOUT is 504, and the request to Ollama is aborted', async (t) => {
  const fake = await fakeOllama(t, { scenario: { headersDelayMs: 2000 } })
  const app = await testApp(t, fake, { OLLAMA_TIMEOUT: '100ms' })
  const response = await chat.fetch(chatRequest({ message: 'slow?' }), app)
  assert.equal(response.status, 504)
  assert.match((await json(response)).detail, /OLLAMA_TIMEOUT/)
  await fake.waitFor(() => fake.chatRequests()[0]?.abortedAt != null)
})

test("other Ollama errors are 502 with Ollama's message", async (t) => {
  const { response, problem } = await failBeforeFirstToken(t, { status: 500, errorMessage: 'llama runner process has terminated' })
  assert.equal(response.status, 502)
  assert.equal(problem.detail, 'llama runner process has terminated')
})

test('a second chat in a session with a reply running is 409; MAX_CONCURRENT_CHATS is 429 with Retry-After', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b'], stallAfterTokens: 1 } })
  const app = await testApp(t, fake, { MAX_CONCURRENT_CHATS: '1' })
  const sessionId = randomUUID()
  const running = await chat.fetch(chatRequest({ message: 'first', session_id: sessionId }), app)
  assert.equal(running.status, 200)
  const conflict = await chat.fetch(chatRequest({ message: 'second', session_id: sessionId }), app)
  assert.equal(conflict.status, 409)
  assert.equal((await json(conflict)).type, 'https://api.chat-ollama.com/errors/conflict')
  const limited = await chat.fetch(chatRequest({ message: 'elsewhere' }), app)
  assert.equal(limited.status, 429)
  assert.equal((await json(limited)).type, 'https://api.chat-ollama.com/errors/rate_limit')
  assert.ok(Number(limited.headers.get('retry-after')) > 0)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 2 })
  await app.generations.cancel(sessionId)
  await readSse(running)
})

/** Streams one chat whose reply fails after it started, and returns its events and stored rows. */
async function failAfterFirstToken(t: import('node:test').TestContext, scenario: import('./support/fake-ollama.ts').Scenario, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, { scenario: { tokens: ['Par', 'tial', ' text', ' never'], ...scenario } })
  const app = await testApp(t, fake, env)
  const response = await chat.fetch(chatRequest({ message: 'go' }), app)
  assert.equal(response.status, 200)
  const { events } = await readSse(response)
  const last = events.at(-1)!.data
  return { events, last, stored: await storedMessages(app, last.session_id), app, fake }
}

test('an error line mid-stream ends the stream with one error event; the partial reply is stored as error', async (t) => {
  const { events, last, stored, app } = await failAfterFirstToken(t, { failAfterTokens: 2, errorMessage: 'CUDA out of memory' })
  assert.equal(last.type, 'error')
  assert.match(last.error, /CUDA out of memory/)
  assert.equal(events.filter((event) => event.data.type === 'error').length, 1)
  assert.equal(events.filter((event) => event.data.type === 'done').length, 0)
  assert.deepEqual(stored.map((message) => [message.role, message.content, message.status]), [
    ['user', 'go', 'complete'],
    ['assistant', 'Partial', 'error'],
  ])
  assert.equal(last.message_id, (await app.store.listMessages(last.session_id, 10, null)).items[1]!.id)
  assert.equal(app.generations.size, 0)
})

test('a stream cut without done ends with an error event and keeps the partial text', async (t) => {
  const { last, stored } = await failAfterFirstToken(t, { cutAfterTokens: 3 })
  assert.equal(last.type, 'error')
  assert.match(last.error, /Did not receive done/)
  assert.deepEqual(stored.at(-1), { role: 'assistant', content: 'Partial text', status: 'error', model: 'llama3.2', tokens_used: null, prompt_tokens: null, done_reason: null })
})

test('CHAT_TIMEOUT stops a reply that runs too long, stored as error with its text', async (t) => {
  const { last, stored, fake } = await failAfterFirstToken(t, { stallAfterTokens: 2 }, { CHAT_TIMEOUT: '150ms' })
  assert.equal(last.type, 'error')
  assert.match(last.error, /CHAT_TIMEOUT/)
  assert.equal(stored.at(-1).content, 'Partial')
  assert.equal(stored.at(-1).status, 'error')
  // Ollama is told to stop: its request is aborted.
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
})

test('a failed reply in stream:false mode is a 502 problem, with the partial text stored', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b', 'c'], failAfterTokens: 1 } })
  const app = await testApp(t, fake)
  const response = await chat.fetch(chatRequest({ message: 'go', stream: false }), app)
  assert.equal(response.status, 502)
  assert.match((await json(response)).detail, /an error was encountered/)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 2 })
})

test('`: ping` flows while no token does', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['slow', ' reply'], tokenDelayMs: 120 } })
  const app = await testApp(t, fake, { SSE_HEARTBEAT: '30ms' })
  const { events, pings } = await readSse(await chat.fetch(chatRequest({ message: 'go' }), app))
  assert.ok(pings >= 2, `only ${pings} pings`)
  assert.equal(events.at(-1)!.data.type, 'done')
})
