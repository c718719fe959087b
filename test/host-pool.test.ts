import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import chat from '../functions/chat.ts'
import health from '../functions/health.ts'
import models from '../functions/models.ts'
import sessionCancel from '../functions/session-cancel.ts'
import { LOCAL_USER_ID } from '../lib/store/chat-store.ts'
import { FakeOllama, type FakeOllamaOptions } from './support/fake-ollama.ts'
import { chatRequest, json, readSse, sseEvents, storedMessages, take, takeText, testApp, toRequest, within } from './support/app.ts'
import type { AppContext } from '../lib/context.ts'

/** Three fake Ollama hosts (or as many as `options` name), stopped when the test ends. */
async function fakeHosts(t: TestContext, options: FakeOllamaOptions[] = [{}, {}, {}]): Promise<FakeOllama[]> {
  const fakes = await Promise.all(options.map((option) => new FakeOllama(option).listen()))
  t.after(() => Promise.all(fakes.map((fake) => fake.close())))
  return fakes
}

const poolApp = async (t: TestContext, fakes: FakeOllama[], env: Record<string, string> = {}) =>
  await testApp(t, null, { OLLAMA_HOSTS: fakes.map((fake) => fake.url).join(','), OLLAMA_PROBE_INTERVAL: '50ms', ...env })

/** Which fake got each chat request, by index. */
const chatsPerHost = (fakes: FakeOllama[]) => fakes.map((fake) => fake.chatRequests().length)

async function chatJson(app: AppContext, body: Record<string, unknown>) {
  const response = await chat.fetch(chatRequest({ stream: false, ...body }), app)
  return { status: response.status, body: await json(response) }
}

test('model-aware: a chat goes only to hosts that have its model; none has it: 404; /v1/models is the union', async (t) => {
  const fakes = await fakeHosts(t, [{ models: ['alpha:latest'] }, { models: ['beta:latest'] }, { models: ['beta:latest', 'gamma:7b'] }])
  const app = await poolApp(t, fakes)
  assert.equal((await chatJson(app, { message: 'a', model: 'alpha' })).status, 200)
  assert.deepEqual(chatsPerHost(fakes), [1, 0, 0])
  for (let index = 0; index < 4; index++) assert.equal((await chatJson(app, { message: 'b', model: 'beta' })).status, 200)
  assert.equal(fakes[0]!.chatRequests().length, 1, 'beta never went to the host without it')
  assert.equal(fakes[1]!.chatRequests().length + fakes[2]!.chatRequests().length, 4)
  const missing = await chatJson(app, { message: 'c', model: 'delta' })
  assert.equal(missing.status, 404)
  assert.equal(missing.body.type, 'https://api.chat-ollama.com/errors/model_not_found')
  const listed = await json(await models.fetch(toRequest('GET /v1/models'), app))
  assert.deepEqual(
    listed.models.map((model: any) => [model.name, model.hosts.length]).sort(),
    [['alpha:latest', 1], ['beta:latest', 2], ['gamma:7b', 1]],
  )
})

test('concurrent conversations spread over every host that has the model; each stays on its host', async (t) => {
  const fakes = await fakeHosts(t, [{ scenario: { paced: true } }, { scenario: { paced: true } }, { scenario: { paced: true } }])
  const app = await poolApp(t, fakes)
  const sessions = Array.from({ length: 6 }, () => randomUUID())
  // The fakes hold their answers (paced), so all six are outstanding at once.
  const pending = sessions.map((sessionId) => chat.fetch(chatRequest({ message: 'first', session_id: sessionId }), app))
  await fakes[0]!.waitFor(() => chatsPerHost(fakes).reduce((sum, count) => sum + count, 0) === 6)
  assert.deepEqual(chatsPerHost(fakes), [2, 2, 2], 'six conversations, two on each host')
  for (const fake of fakes) fake.release(100)
  for (const response of await Promise.all(pending)) assert.equal((await readSse(response)).events.at(-1)!.data.type, 'done')

  // Each conversation's second and third turns go to the host of its first.
  const firstHost = await Promise.all(sessions.map((sessionId) => app.store.sessionHost(sessionId)))
  assert.equal(new Set(firstHost).size, 3)
  for (const turn of ['second', 'third']) {
    for (const sessionId of sessions) {
      for (const fake of fakes) fake.release(100)
      const answer = await chatJson(app, { message: turn, session_id: sessionId })
      assert.equal(answer.status, 200)
    }
  }
  assert.deepEqual(await Promise.all(sessions.map((sessionId) => app.store.sessionHost(sessionId))), firstHost, 'every conversation stayed on its host')
  assert.deepEqual(chatsPerHost(fakes), [6, 6, 6])
  assert.equal(app.ollama.stats.warmTurns, 12)
  assert.equal(app.ollama.stats.pinnedTurns, 12)
})

test('a busy host and a dead host are skipped with no client-visible error, and the conversation moves', async (t) => {
  const fakes = await fakeHosts(t)
  const app = await poolApp(t, fakes, { OLLAMA_PROBE_INTERVAL: '1h' })
  const sessionId = randomUUID()
  assert.equal((await chatJson(app, { message: 'one', session_id: sessionId })).status, 200)
  const first = (await app.store.sessionHost(sessionId))!
  const busy = fakes.find((fake) => fake.url === first)!
  busy.scenario = { status: 503 }
  const second = await chatJson(app, { message: 'two', session_id: sessionId })
  assert.equal(second.status, 200, 'the busy host was skipped')
  assert.equal(busy.chatRequests().length, 2, 'it was asked, and said it was busy')
  const moved = (await app.store.sessionHost(sessionId))!
  assert.notEqual(moved, first)

  const dead = fakes.find((fake) => fake.url === moved)!
  await dead.close()
  const third = await chatJson(app, { message: 'three', session_id: sessionId })
  assert.equal(third.status, 200, 'the dead host was skipped')
  const last = (await app.store.sessionHost(sessionId))!
  assert.ok(last !== moved && last !== first)
  assert.deepEqual((await storedMessages(app, sessionId)).map((message) => message.status), ['complete', 'complete', 'complete', 'complete', 'complete', 'complete'])
})

test('a host that comes back gets traffic again within the probe interval', async (t) => {
  const fakes = await fakeHosts(t)
  const [preferred] = fakes
  preferred!.loaded = ['llama3.2:latest']
  const app = await poolApp(t, fakes)
  const port = Number(new URL(preferred!.url).port)
  const stateOf = async () => (await json(await health.fetch(toRequest('GET /health'), app))).ollama_hosts.hosts.find((host: any) => host.host === preferred!.url).state
  assert.equal(await stateOf(), 'up', 'the first /health starts the probes')
  assert.equal((await chatJson(app, { message: 'warm' })).status, 200)
  assert.equal(preferred!.chatRequests().length, 1, 'the host with the model loaded goes first')

  await preferred!.close()
  await fakes[1]!.waitFor(() => app.ollama.hosts[0]!.state === 'down')
  assert.equal(await stateOf(), 'down')
  assert.equal((await chatJson(app, { message: 'meanwhile' })).status, 200)
  const back = await new FakeOllama().listen(port)
  t.after(() => back.close())
  back.loaded = ['llama3.2:latest']
  await back.waitFor(() => app.ollama.hosts[0]!.state === 'up')
  assert.equal(await stateOf(), 'up')
  assert.equal((await chatJson(app, { message: 'back' })).status, 200)
  assert.equal(back.chatRequests().length, 1, 'traffic again once a probe saw it')
})

test('cancel aborts the request on the host that runs the reply, and only there', async (t) => {
  const fakes = await fakeHosts(t, [{ scenario: { paced: true } }, { scenario: { paced: true } }, { scenario: { paced: true } }])
  const app = await poolApp(t, fakes)
  const sessionId = randomUUID()
  for (const fake of fakes) fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'stop me', session_id: sessionId }), app))
  await takeText(live, 'You')
  const running = fakes.find((fake) => fake.chatRequests().length === 1)!
  const cancelled = await json(await sessionCancel.fetch(toRequest(`POST /v1/sessions/${sessionId}/cancel`), app))
  assert.equal(cancelled.status, 'cancelled')
  await running.waitFor(() => running.chatRequests()[0]!.abortedAt !== null)
  assert.deepEqual(chatsPerHost(fakes).sort(), [0, 0, 1])
  assert.equal((await take(live, 10)).at(-1)!.data.done_reason, 'cancelled')
})

test('a host dying mid-reply: an error event and the partial text stored; no splicing from another host', async (t) => {
  const fakes = await fakeHosts(t, [{ scenario: { paced: true } }, { scenario: { paced: true } }])
  const app = await poolApp(t, fakes)
  const sessionId = randomUUID()
  for (const fake of fakes) fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'long answer', session_id: sessionId }), app))
  await takeText(live, 'You')
  const running = fakes.find((fake) => fake.chatRequests().length === 1)!
  await running.close()
  const rest = await take(live, 10)
  assert.equal(rest.at(-1)!.data.type, 'error')
  assert.deepEqual((await storedMessages(app, sessionId)).at(-1)!.status, 'error')
  assert.equal((await storedMessages(app, sessionId)).at(-1)!.content, 'You')
  assert.equal(fakes.reduce((sum, fake) => sum + fake.chatRequests().length, 0), 1, 'no other host was asked mid-reply')
})

test('every host down: 503 with Retry-After, the user message kept in its session; /health says how many are up', async (t) => {
  const fakes = await fakeHosts(t)
  const app = await poolApp(t, fakes)
  const up = await json(await health.fetch(toRequest('GET /health'), app))
  assert.deepEqual([up.services.ollama, up.ollama_hosts.up, up.ollama_hosts.total], ['healthy', 3, 3])
  await fakes[2]!.close()
  await fakes[0]!.waitFor(() => app.ollama.hosts[2]!.state === 'down')
  const partly = await json(await health.fetch(toRequest('GET /health'), app))
  assert.deepEqual([partly.status, partly.ollama_hosts.up], ['healthy', 2])
  await Promise.all(fakes.slice(0, 2).map((fake) => fake.close()))
  await within(10_000, 'every host down', (async () => {
    while (!app.ollama.hosts.every((host) => host.state === 'down')) await new Promise((resolve) => setTimeout(resolve, 20))
  })())
  const sessionId = (await app.store.createSession({ ownerId: LOCAL_USER_ID })).id
  const refused = await chat.fetch(chatRequest({ message: 'anyone?', session_id: sessionId }), app)
  assert.equal(refused.status, 503)
  assert.ok(refused.headers.get('retry-after'))
  assert.deepEqual((await app.store.listMessages(sessionId, 10, null)).items.map((message) => message.role), ['user'])
  const down = await json(await health.fetch(toRequest('GET /health'), app))
  assert.deepEqual([down.status, down.services.ollama, down.ollama_hosts.up], ['degraded', 'unhealthy', 0])
  assert.equal((await app.store.getSession(sessionId, LOCAL_USER_ID))!.message_count, 1)
})
