import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { test, type TestContext } from 'node:test'
import { FakeOllama } from './support/fake-ollama.ts'
import { chatRequest, json, readSse, testApp, testServer } from './support/app.ts'
import chat from '../functions/chat.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** After a fault: the service still answers health and a plain chat. */
async function assertHealthyAfter(url: string): Promise<void> {
  assert.equal((await fetch(`${url}/health`)).status, 200)
  const answer = await post(url, { message: 'are you there?', stream: false })
  assert.equal(answer.status, 200)
  assert.equal((await json(answer)).content, 'You said: are you there?')
}

async function messagesOf(url: string, sessionId: string): Promise<Array<[string, string, string]>> {
  const page = await json(await fetch(`${url}/v1/sessions/${sessionId}/messages`))
  return page.messages.map((message: { role: string; content: string; status: string }) => [message.role, message.content, message.status])
}

async function startedFake(t: TestContext, port = 0): Promise<FakeOllama> {
  const fake = await new FakeOllama().listen(port)
  t.after(() => fake.close())
  return fake
}

test('Ollama down at start: 503 with Retry-After; a first message leaves no session, a later one is kept; once it is up, chats work', async (t) => {
  const probe = await new FakeOllama().listen()
  const port = Number(new URL(probe.url).port)
  await probe.close()
  const { url } = await testServer(t, null, { OLLAMA_HOST: `127.0.0.1:${port}` })
  const down = await post(url, { message: 'anyone?', session_id: '6f1c2a44-7a0e-4b51-9f7e-1b2c3d4e5f60' })
  assert.equal(down.status, 503)
  assert.ok(down.headers.get('retry-after'))
  assert.equal((await json(await fetch(`${url}/health`))).status, 'degraded')
  assert.equal((await fetch(`${url}/v1/sessions/6f1c2a44-7a0e-4b51-9f7e-1b2c3d4e5f60`)).status, 404, 'no empty session left behind')
  const session = await json(await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }))
  assert.equal((await post(url, { message: 'still there?', session_id: session.id })).status, 503)
  assert.deepEqual(await messagesOf(url, session.id), [['user', 'still there?', 'complete']])

  await startedFake(t, port)
  await assertHealthyAfter(url)
})

test('Ollama restarted: the first chats after it are answered, not failed on connections the old one left open', async (t) => {
  const first = await new FakeOllama().listen()
  const port = Number(new URL(first.url).port)
  const app = await testApp(t, null, { OLLAMA_HOST: `127.0.0.1:${port}` })
  // Several kept-alive connections to the old one.
  await Promise.all(['a', 'b', 'c'].map(async (message) => assert.equal((await chat.fetch(chatRequest({ message, stream: false }), app)).status, 200)))
  await first.close()
  await startedFake(t, port)
  for (const message of ['after 1', 'after 2', 'after 3']) {
    const after = await chat.fetch(chatRequest({ message, stream: false }), app)
    assert.equal(after.status, 200, await after.clone().text())
  }
})

test('Ollama going down mid-stream: one error event, the partial reply kept, the service healthy after', async (t) => {
  const fake = await startedFake(t)
  fake.scenario = { tokens: ['one ', 'two ', 'three ', 'four'], tokenDelayMs: 40 }
  const { url } = await testServer(t, fake)
  const response = await post(url, { message: 'tell me' })
  const reader = response.body!.getReader()
  let text = ''
  while (!text.includes('two ')) text += new TextDecoder().decode((await reader.read()).value)
  // Every connection to Ollama is cut: the fake is gone.
  await fake.close()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    text += new TextDecoder().decode(value)
  }
  const events = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)))
  assert.equal(events.at(-1).type, 'error')
  assert.equal(events.filter((event) => event.type === 'error').length, 1)
  const messages = await messagesOf(url, events[0].session_id)
  assert.deepEqual(messages, [['user', 'tell me', 'complete'], ['assistant', 'one two ', 'error']])

  const revived = await new FakeOllama().listen(Number(new URL(fake.url).port))
  t.after(() => revived.close())
  await assertHealthyAfter(url)
})

test('malformed NDJSON lines from Ollama are skipped and the reply completes', async (t) => {
  const fake = await startedFake(t)
  fake.scenario = { tokens: ['a', 'b', 'c'], malformedAfterTokens: 1 }
  const { url } = await testServer(t, fake)
  const { events } = await readSse(await post(url, { message: 'x' }))
  assert.equal(events.at(-1)!.data.type, 'done')
  assert.equal(events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join(''), 'abc')
})

test('busy, silent and stalling Ollama: a problem or an error event, the user message and partial text kept, healthy after', async (t) => {
  const fake = await startedFake(t)
  const { url } = await testServer(t, fake, { OLLAMA_TIMEOUT: '150ms', CHAT_TIMEOUT: '400ms' })
  // In sessions that exist: a refused first message would leave nothing.
  const newSession = async () => (await json(await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }))).id as string

  fake.next({ status: 503 })
  const busy = await post(url, { message: 'busy?', session_id: await newSession() })
  assert.equal(busy.status, 503)
  assert.ok(busy.headers.get('retry-after'))

  fake.next({ headersDelayMs: 3000 })
  const silent = await post(url, { message: 'silent?', session_id: await newSession() })
  assert.equal(silent.status, 504)

  fake.next({ tokens: ['half ', 'way ', 'there'], stallAfterTokens: 2 })
  const { events } = await readSse(await post(url, { message: 'stall?' }))
  assert.equal(events.at(-1)!.data.type, 'error')
  assert.deepEqual((await messagesOf(url, events[0]!.data.session_id)).at(-1), ['assistant', 'half way ', 'error'])

  const sessions = await json(await fetch(`${url}/v1/sessions`))
  // Every attempt kept its user message.
  assert.equal(sessions.sessions.length, 3)
  assert.ok(sessions.sessions.every((session: any) => session.message_count >= 1))
  await assertHealthyAfter(url)
})

test('200 concurrent chats with MAX_CONCURRENT_CHATS at 100: each completes or gets 429 with Retry-After; no 5xx, no stream without done', async (t) => {
  const fake = await startedFake(t)
  // Paced: the replies admitted wait for Ollama until the test lets them go, so the 200 overlap
  // however slow the machine, and exactly 100 are refused.
  fake.scenario = { tokens: ['a ', 'b ', 'c ', 'd ', 'e'], paced: true }
  const { url, app } = await testServer(t, fake, { MAX_CONCURRENT_CHATS: '100' })
  let refused = 0
  const settling = Array.from({ length: 200 }, async (_, index) => {
    const response = await post(url, { message: `load ${index}` })
    if (response.status === 429) {
      assert.ok(Number(response.headers.get('retry-after')) > 0)
      await response.body?.cancel()
      refused++
      return 'limited'
    }
    assert.equal(response.status, 200)
    const { events } = await readSse(response)
    assert.equal(events.at(-1)!.data.type, 'done', 'a stream ended without done')
    return 'completed'
  })
  await fake.waitFor(() => refused === 100 && app.generations.size === 100, 60_000)
  fake.release(1_000_000)
  const outcomes = await Promise.all(settling)
  assert.equal(outcomes.filter((outcome) => outcome === 'completed').length, 100)
  assert.equal(outcomes.filter((outcome) => outcome === 'limited').length, 100)
  await fake.waitFor(() => app.generations.size === 0)
})

test('OLLAMA_HOST may be https://: chats and health go over TLS', async (t) => {
  const tls = new URL('./support/tls/', import.meta.url)
  const fake = await new FakeOllama({ tls: { key: readFileSync(new URL('key.pem', tls), 'utf8'), cert: readFileSync(new URL('cert.pem', tls), 'utf8') } }).listen()
  t.after(() => fake.close())
  assert.match(fake.url, /^https:\/\/localhost:\d+$/)
  // The test certificate is trusted the way an operator would trust a private CA.
  const server = await spawnServer(t, SERVER_FROM_SOURCE, {
    env: { OLLAMA_HOST: fake.url, DB_PATH: ':memory:', NODE_EXTRA_CA_CERTS: fileURLToPath(new URL('cert.pem', tls)) },
  })
  assert.equal((await json(await fetch(`${server.url}/health`))).services.ollama, 'healthy')
  const answer = await post(server.url, { message: 'over tls', stream: false })
  assert.equal(answer.status, 200)
  assert.equal((await json(answer)).content, 'You said: over tls')
  const { events } = await readSse(await post(server.url, { message: 'streamed over tls' }))
  assert.equal(events.at(-1)!.data.type, 'done')
})
