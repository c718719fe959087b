/**
 * A chat keeps its settings (docs/api.md "Chat settings"): model, options and think kept by the
 * session, set by its first chat or POST /v1/sessions, changed with PATCH, used by every turn that
 * sends none of its own; its system prompt changed or removed from the next turn on; each reply's
 * model and figures. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import regenerate from '../functions/session-regenerate.ts'
import sessionGet from '../functions/session-get.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionUpdate from '../functions/session-update.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import type { AppContext } from '../lib/context.ts'
import { authServer, chatRequest, fakeOllama, json, readSse, testApp, toRequest } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'

const THINKER = 'qwen3:8b'
const VISION = 'gemma3:4b'
const settingsOllama = (t: Parameters<typeof fakeOllama>[0]) =>
  fakeOllama(t, { models: ['llama3.2:latest', THINKER, VISION], capabilities: { [THINKER]: ['completion', 'tools', 'thinking'], [VISION]: ['completion', 'vision'] } })

const lastChat = (fake: FakeOllama) => fake.chatRequests().at(-1)!.body
const getSession = async (app: AppContext, id: string) => json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${id}`), app))
const patch = (app: AppContext, id: string, body: unknown) => sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${id}`, body), app)
const say = async (app: AppContext, body: Record<string, unknown>) => json(await chat.fetch(chatRequest({ stream: false, ...body }), app))

test('the first chat sets the session\'s model, options and think; later chats that send none use them, one that sends its own uses it for that turn only', async (t) => {
  const fake = await settingsOllama(t)
  const app = await testApp(t, fake)
  const first = await say(app, { message: 'Hi', model: THINKER, options: { temperature: 0.3, num_ctx: 8192 }, think: 'low' })
  const session = await getSession(app, first.session_id)
  assert.deepEqual([session.model, session.options, session.think], [THINKER, { temperature: 0.3, num_ctx: 8192 }, 'low'])

  await say(app, { message: 'Again', session_id: first.session_id })
  assert.deepEqual([lastChat(fake).model, lastChat(fake).options.temperature, lastChat(fake).options.num_ctx, lastChat(fake).think], [THINKER, 0.3, 8192, 'low'])

  // This turn's own model and option win, for this turn; the kept ones are untouched.
  await say(app, { message: 'Plainly', session_id: first.session_id, model: 'llama3.2', options: { temperature: 1 }, think: false })
  assert.deepEqual([lastChat(fake).model, lastChat(fake).options.temperature, lastChat(fake).options.num_ctx, lastChat(fake).think], ['llama3.2', 1, 8192, false])
  const after = await getSession(app, first.session_id)
  assert.deepEqual([after.model, after.options, after.think], [THINKER, { temperature: 0.3, num_ctx: 8192 }, 'low'])

  // A regeneration retries with the reply's model and the chat's options and think.
  const { messages } = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages`), app))
  const thinkerReply = messages.filter((message: any) => message.role === 'assistant' && message.model === THINKER).at(-1)
  await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${thinkerReply.id}/regenerate`, { stream: false }), app))
  assert.deepEqual([lastChat(fake).model, lastChat(fake).options.temperature, lastChat(fake).think], [THINKER, 0.3, 'low'])

  // A chat that names no model keeps the one it was answered by: DEFAULT_MODEL's, not whatever it becomes later.
  const plain = await say(app, { message: 'Hello' })
  assert.equal((await getSession(app, plain.session_id)).model, app.config.defaultModel)
})

test('POST /v1/sessions takes the settings and the system prompt; the chat uses them', async (t) => {
  const fake = await settingsOllama(t)
  const app = await testApp(t, fake)
  const created = await sessionsCreate.fetch(toRequest('POST /v1/sessions', { title: 'Pictures', system: 'Describe images.', model: VISION, options: { seed: 7 } }), app)
  assert.equal(created.status, 201)
  const session = await json(created)
  assert.deepEqual([session.model, session.options, session.think, session.system], [VISION, { seed: 7 }, null, 'Describe images.'])
  await say(app, { message: 'What is this?', session_id: session.id })
  assert.deepEqual([lastChat(fake).model, lastChat(fake).options.seed, lastChat(fake).messages[0]], [VISION, 7, { role: 'system', content: 'Describe images.' }])

  const refused = await sessionsCreate.fetch(toRequest('POST /v1/sessions', { model: 'llama3.2', think: true }), app)
  assert.equal(refused.status, 400)
  assert.equal((await json(refused)).type.endsWith('model_capability'), true)
})

test('PATCH changes the settings and the system prompt for the next turn; the history and its active path stay as they were', async (t) => {
  const fake = await settingsOllama(t)
  const app = await testApp(t, fake)
  const first = await say(app, { message: 'One' })
  const second = await say(app, { message: 'Two', session_id: first.session_id })
  const id = first.session_id

  // A system prompt added to a chat that had none goes first, before every branch; the path is kept.
  const added = await json(await patch(app, id, { system: 'Be terse.', model: THINKER, options: { temperature: 0.1 }, think: 'high' }))
  assert.deepEqual([added.system, added.model, added.options, added.think, added.title, added.current_message_id], ['Be terse.', THINKER, { temperature: 0.1 }, 'high', 'One', second.id])
  await say(app, { message: 'Three', session_id: id })
  const sent = lastChat(fake)
  assert.deepEqual(sent.messages.map((message: any) => [message.role, message.content]).slice(0, 2), [['system', 'Be terse.'], ['user', 'One']])
  assert.deepEqual([sent.model, sent.options.temperature, sent.think], [THINKER, 0.1, 'high'])
  const listed = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${id}/messages`), app))).messages
  assert.equal(listed[0].role, 'system')
  assert.equal(listed[1].parent_id, listed[0].id)

  // Changed in place, then removed: its messages stay, in their order.
  await patch(app, id, { system: 'Be very terse.' })
  await say(app, { message: 'Four', session_id: id })
  assert.deepEqual(lastChat(fake).messages[0], { role: 'system', content: 'Be very terse.' })
  const removed = await json(await patch(app, id, { system: null, model: null, options: {}, think: null }))
  assert.deepEqual([removed.system, removed.model, removed.options, removed.think], [null, null, {}, null])
  await say(app, { message: 'Five', session_id: id })
  assert.deepEqual(lastChat(fake).messages.map((message: any) => message.content).slice(0, 2), ['One', `You said: One`])
  assert.equal(lastChat(fake).model, app.config.defaultModel)
  const kept = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${id}/messages`), app))).messages
  assert.deepEqual(kept.map((message: any) => message.content).filter((_: string, index: number) => index % 2 === 0), ['One', 'Two', 'Three', 'Four', 'Five'])
  assert.equal(kept[0].parent_id, null)
})

test('PATCH refuses what a turn would refuse, before changing anything: an unknown model, think for a model that cannot, a bad option, nothing to change', async (t) => {
  const fake = await settingsOllama(t)
  const app = await testApp(t, fake)
  const { session_id: id } = await say(app, { message: 'One', model: VISION })
  const cases: Array<[unknown, number, string]> = [
    [{ model: 'nope:1b', system: 'x' }, 404, 'model_not_found'],
    [{ think: true }, 400, 'model_capability'],
    [{ options: { temperature: 9 }, system: 'x' }, 400, 'validation'],
    [{ options: { mirostat: 1 } }, 400, 'validation'],
    [{}, 400, 'validation'],
    [{ model: '' }, 400, 'validation'],
  ]
  for (const [body, status, kind] of cases) {
    const response = await patch(app, id, body)
    assert.equal(response.status, status, JSON.stringify(body))
    assert.ok((await json(response)).type.endsWith(kind), JSON.stringify(body))
  }
  const session = await getSession(app, id)
  assert.deepEqual([session.model, session.options, session.think, session.system], [VISION, {}, null, null])
})

test('another user\'s session is missing to PATCH and GET, exactly like one that does not exist; nothing of it changes', async (t) => {
  const fake = await settingsOllama(t)
  const server = await authServer(t, fake)
  const alice = await server.userWithKey('alice')
  const bob = await server.userWithKey('bob')
  const call = (route: string, method: string, headers: Record<string, string>, body?: unknown) =>
    fetch(`${server.url}${route}`, { method, headers: { ...headers, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const made = await (await call('/v1/sessions', 'POST', alice.headers, { system: 'Secret prompt', model: VISION })).json() as { id: string }
  const missingId = '00000000-0000-4000-8000-000000000000'
  const answers = []
  for (const id of [made.id, missingId]) {
    const patched = await call(`/v1/sessions/${id}`, 'PATCH', bob.headers, { system: 'Mine now', model: 'llama3.2' })
    const problem = await patched.json() as Record<string, string>
    answers.push([patched.status, problem.type, problem.title, problem.detail!.replace(id, '{id}'), (await call(`/v1/sessions/${id}`, 'GET', bob.headers)).status])
  }
  assert.deepEqual(answers[0], answers[1], 'someone else\'s session is answered as a missing one')
  assert.equal(answers[0]![0], 404)
  const session = await (await call(`/v1/sessions/${made.id}`, 'GET', alice.headers)).json() as Record<string, unknown>
  assert.deepEqual([session.system, session.model], ['Secret prompt', VISION])
})

test('each reply lists the model that wrote it and its figures: prompt and completion tokens, tokens per second (in done and the JSON answer too)', async (t) => {
  const fake = await settingsOllama(t)
  const app = await testApp(t, fake)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Hi there', model: THINKER }), app))
  const done = events.at(-1)!.data
  const expected = Math.round((done.completion_tokens / 4.535599) * 10) / 10
  assert.equal(done.tokens_per_second, expected)
  const answer = await say(app, { message: 'Again', session_id: done.session_id })
  assert.equal(typeof answer.tokens_per_second, 'number')
  const { messages } = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${done.session_id}/messages`), app))
  const reply = messages[1]
  assert.deepEqual([reply.model, reply.prompt_tokens, reply.completion_tokens, reply.tokens_per_second], [THINKER, done.prompt_tokens, done.completion_tokens, expected])
  assert.equal('tokens_per_second' in messages[0], false, 'a user message has no figures')
})
