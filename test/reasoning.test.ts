/**
 * Reasoning models (docs/api.md "Reasoning"): `think` passed to Ollama, the reasoning streamed as
 * `thinking` events before the answer, stored apart from the text, replayed, checkpointed, and
 * left out of later prompts. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import importFile from '../functions/import.ts'
import regenerate from '../functions/session-regenerate.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionExport from '../functions/session-export.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionStream from '../functions/session-stream.ts'
import type { AppContext } from '../lib/context.ts'
import { GenerationRegistry } from '../lib/generation/registry.ts'
import { createAppContext } from '../lib/app.ts'
import { silentLogger } from '../lib/observability/log.ts'
import { chatRequest, fakeOllama, json, readSse, rowCounts, sseEvents, storedRows, take, testApp, toRequest, within, type SseEvent } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'

const THINKER = 'qwen3:8b'
const PLAIN = 'llama3.2:latest'
const thinkingOllama = (t: Parameters<typeof fakeOllama>[0], scenario = {}) =>
  fakeOllama(t, { models: [PLAIN, THINKER], capabilities: { [THINKER]: ['completion', 'tools', 'thinking'] }, scenario })

const messagesOf = async (app: AppContext, sessionId: string) =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
const textOf = (events: SseEvent[], type: string) => events.filter((event) => event.data.type === type).map((event) => event.data.content).join('')
const streamRequest = (sessionId: string, lastEventId?: string) =>
  toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, lastEventId ? { 'last-event-id': lastEventId } : {})
const lastChat = (fake: FakeOllama) => fake.chatRequests().at(-1)!.body

test('a thinking model streams its reasoning as thinking events before the answer; done, the JSON answer and the listed message carry it apart from the text', async (t) => {
  const fake = await thinkingOllama(t, { thinking: ['Count ', 'the r', 's.'], tokens: ['There ', 'are 3.'] })
  const app = await testApp(t, fake)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'How many r in strawberry?', model: THINKER }), app))
  const types = events.map((event) => event.data.type)
  assert.equal(types[0], 'start')
  assert.ok(types.lastIndexOf('thinking') < types.indexOf('token'), `thinking comes before the answer: ${types.join(' ')}`)
  assert.equal(textOf(events, 'thinking'), 'Count the rs.')
  assert.equal(textOf(events, 'token'), 'There are 3.')
  assert.ok(events.every((event, index) => event.id === `${events[0]!.data.message_id}:${index + 1}`), 'thinking events have ids in the reply\'s sequence')
  const done = events.at(-1)!.data
  assert.equal(done.type, 'done')
  assert.equal(done.thinking, 'Count the rs.')
  assert.equal(typeof done.thinking_ms, 'number')
  assert.ok(done.thinking_ms >= 0)
  // Omitted, `think` is not sent: Ollama's default (a model that can think does) stands.
  assert.equal('think' in lastChat(fake), false)

  const [, reply] = await messagesOf(app, events[0]!.data.session_id)
  assert.equal(reply.content, 'There are 3.')
  assert.equal(reply.thinking, 'Count the rs.')
  assert.equal(reply.thinking_ms, done.thinking_ms)

  const answer = await json(await chat.fetch(chatRequest({ message: 'And in raspberry?', model: THINKER, stream: false, session_id: events[0]!.data.session_id }), app))
  assert.equal(answer.content, 'There are 3.')
  assert.equal(answer.thinking, 'Count the rs.')
  assert.equal(typeof answer.thinking_ms, 'number')
})

test('think is passed to Ollama as it is; false turns the reasoning off; a model without it is 400 model_capability before anything is stored', async (t) => {
  const fake = await thinkingOllama(t)
  const app = await testApp(t, fake)
  for (const think of [true, 'low', 'medium', 'high'] as const) {
    const answer = await json(await chat.fetch(chatRequest({ message: 'hi', model: THINKER, think, stream: false }), app))
    assert.equal(lastChat(fake).think, think)
    assert.equal(answer.thinking, 'Thinking about: hi')
  }
  const off = await readSse(await chat.fetch(chatRequest({ message: 'hi', model: THINKER, think: false }), app))
  assert.equal(lastChat(fake).think, false)
  assert.equal(off.events.filter((event) => event.data.type === 'thinking').length, 0)
  assert.equal(off.events.at(-1)!.data.thinking, null)
  assert.equal(off.events.at(-1)!.data.thinking_ms, null)
  // false always works, whatever the model.
  assert.equal((await chat.fetch(chatRequest({ message: 'hi', model: PLAIN, think: false, stream: false }), app)).status, 200)

  const before = await rowCounts(app)
  const chats = fake.chatRequests().length
  const refused = await chat.fetch(chatRequest({ message: 'hi', model: PLAIN, think: true }), app)
  assert.equal(refused.status, 400)
  const problem = await json(refused)
  assert.equal(problem.code ?? problem.type.split('/').at(-1), 'model_capability')
  assert.match(problem.detail, /thinking/)
  for (const think of ['max', 'extreme', 1, null]) {
    const invalid = await chat.fetch(chatRequest({ message: 'hi', model: THINKER, think }), app)
    assert.equal(invalid.status, 400, `think ${JSON.stringify(think)}`)
    assert.match((await json(invalid)).detail, /think/)
  }
  assert.deepEqual(await rowCounts(app), before, 'nothing was stored')
  assert.equal(fake.chatRequests().length, chats, 'Ollama was not asked')
})

test('earlier turns\' reasoning is left out of the prompt; a regeneration takes think too', async (t) => {
  const fake = await thinkingOllama(t, { thinking: ['secret ', 'plan'] })
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'one', model: THINKER, stream: false }), app))
  await json(await chat.fetch(chatRequest({ message: 'two', model: THINKER, stream: false, session_id: first.session_id }), app))
  const sent = lastChat(fake).messages
  assert.deepEqual(sent.map((message: any) => message.role), ['user', 'assistant', 'user'])
  assert.ok(sent.every((message: any) => !('thinking' in message) && !message.content.includes('secret')), JSON.stringify(sent))

  const regenerated = await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${first.id}/regenerate`, { think: false, stream: false }), app))
  assert.equal(lastChat(fake).think, false)
  assert.equal(regenerated.thinking, null)
  const refused = await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${first.id}/regenerate`, { think: 'high', model: PLAIN }), app)
  assert.equal(refused.status, 400)
})

test('reasoning is replayed after a reconnect (rebuilt once its frames are gone) and from the store after the reply ended', async (t) => {
  const thinking = Array.from({ length: 8 }, (_, index) => `t${index} `)
  const tokens = ['a ', 'b ', 'c']
  const fake = await thinkingOllama(t, { thinking, tokens, paced: true })
  const app = await testApp(t, fake, {}, undefined, { generations: new GenerationRegistry(100, { tailEvents: 3, maxFollowers: 16 }) })
  const sessionId = randomUUID()
  fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'think hard', model: THINKER, session_id: sessionId }), app))
  // One line at a time, each read before the next leaves: one event per line.
  const seen: SseEvent[] = await take(live, 2)
  for (let index = 1; index < thinking.length + tokens.length; index++) {
    fake.release(1)
    seen.push(...(await take(live, 1)))
  }
  assert.equal(textOf(seen, 'thinking'), thinking.join(''))
  assert.equal(textOf(seen, 'token'), tokens.join(''))
  for (const after of [undefined, seen[2]!.id!, seen[8]!.id!]) {
    const index = after === undefined ? -1 : seen.findIndex((event) => event.id === after)
    const replay = sseEvents(await sessionStream.fetch(streamRequest(sessionId, after), app))
    const events: SseEvent[] = []
    while (textOf(events, 'token') !== textOf(seen.slice(index + 1), 'token')) events.push(...(await take(replay, 1)))
    assert.equal(textOf(events, 'thinking'), textOf(seen.slice(index + 1), 'thinking'), `the reasoning after ${after}`)
    const liveIds = seen.map((event) => event.id)
    assert.ok(events.every((event) => liveIds.includes(event.id)), 'every replayed id is one the live client saw')
    await replay.return(undefined)
  }
  fake.release(1)
  const end = (await take(live, 5)).at(-1)!
  assert.equal(end.data.type, 'done')

  // From the store, as after a restart (on PostgreSQL, its events table): the reasoning then the text, with the ids they had.
  const restarted = createAppContext(app.config, { log: silentLogger, database: app.database })
  const stored = await readSse(await sessionStream.fetch(streamRequest(sessionId, `${seen[0]!.data.message_id}:0`), restarted))
  assert.match(stored.events.map((event) => event.data.type).join(' '), /^start( thinking)+( token)+ done$/)
  assert.equal(textOf(stored.events, 'thinking'), thinking.join(''))
  assert.equal(textOf(stored.events, 'token'), tokens.join(''))
  assert.equal(stored.events.at(-1)!.id, end.id)
  assert.deepEqual(stored.events.at(-1)!.data, end.data)
})

test('a checkpoint keeps the reasoning so far: a reply cut off while thinking keeps what it thought, and a failure mid-thought stores it', async (t) => {
  const fake = await thinkingOllama(t, { thinking: ['first ', 'second ', 'third'], tokens: ['answer'], paced: true })
  const app = await testApp(t, fake, { CHECKPOINT_INTERVAL: '20ms' })
  const sessionId = randomUUID()
  fake.release(2)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'hmm', model: THINKER, session_id: sessionId }), app))
  const seen = await take(live, 3)
  assert.equal(textOf(seen, 'thinking'), 'first second ')
  const replyId = seen[0]!.data.message_id
  await within(10_000, 'the checkpoint of the reasoning', (async () => {
    for (;;) {
      const [row] = await storedRows(app, 'SELECT thinking, content, status FROM messages WHERE id = ?', replyId)
      if (row?.thinking === 'first second ') return assert.deepEqual({ ...row }, { thinking: 'first second ', content: '', status: 'streaming' })
      await new Promise((resolve) => setImmediate(resolve))
    }
  })())
  const listed = (await messagesOf(app, sessionId)).at(-1)
  assert.equal(listed.thinking, 'first second ')

  fake.next({ thinking: ['half ', 'a thought'], tokens: ['never'], failAfterTokens: 1 })
  fake.release(100)
  await take(live, 10)
  const failed = await readSse(await chat.fetch(chatRequest({ message: 'again', model: THINKER, session_id: sessionId }), app))
  assert.equal(failed.events.at(-1)!.data.type, 'error')
  const [row] = await storedRows(app, 'SELECT thinking, content, status FROM messages WHERE id = ?', failed.events[0]!.data.message_id)
  assert.deepEqual({ ...row }, { thinking: 'half ', content: '', status: 'error' })
})

test('a tool step sends its reasoning back with its calls within the turn, and keeps it with the calling message', async (t) => {
  const fake = await thinkingOllama(t, { thinking: ['I should ', 'call it'] })
  const mcp = await startMcpHttpServer(t, 'reasoning-token')
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: 'Bearer reasoning-token' }, default: 'auto' } } }))
  const app = await testApp(t, fake, { MCP_CONFIG: config })
  t.after(() => app.tools.close())
  const answer = await json(await chat.fetch(chatRequest({ message: 'use [[call calc__add {"a":1,"b":2}]]', model: THINKER, tools: true, stream: false }), app))
  assert.equal(answer.content.startsWith('The tools said: '), true, JSON.stringify(answer))
  const calls = fake.chatRequests().slice(-2)
  const step = calls[1]!.body.messages.find((message: any) => message.tool_calls)
  assert.equal(step.thinking, 'I should call it', 'the step\'s reasoning goes back with its calls')
  const listed = await messagesOf(app, answer.session_id)
  const calling = listed.find((message: any) => message.tool_calls)
  assert.equal(calling.thinking, 'I should call it')
  assert.equal(listed.at(-1).thinking, 'I should call it', 'the answer\'s own reasoning, from its model call')

  await json(await chat.fetch(chatRequest({ message: 'next', model: THINKER, stream: false, session_id: answer.session_id }), app))
  assert.ok(lastChat(fake).messages.every((message: any) => !('thinking' in message)), 'a later turn gets none of it')
})

test('exports keep the reasoning apart from the text and imports bring it back; Open WebUI\'s reasoning block and ChatGPT\'s thoughts become the reasoning, not text', async (t) => {
  const fake = await thinkingOllama(t, { thinking: ['weigh ', 'options'], tokens: ['Go ', 'left.'] })
  const app = await testApp(t, fake)
  const answer = await json(await chat.fetch(chatRequest({ message: 'Left or right?', model: THINKER, stream: false }), app))
  const exported = await json(await sessionExport.fetch(toRequest(`GET /v1/sessions/${answer.session_id}/export`), app))
  const reply = exported.messages.find((message: any) => message.role === 'assistant')
  assert.deepEqual([reply.content, reply.thinking, reply.thinking_ms], ['Go left.', 'weigh options', answer.thinking_ms])
  assert.equal('thinking' in exported.messages.find((message: any) => message.role === 'user'), false)
  const markdown = await (await sessionExport.fetch(toRequest(`GET /v1/sessions/${answer.session_id}/export?format=markdown`), app)).text()
  assert.match(markdown, /<summary>Reasoning<\/summary>\n\nweigh options\n\n<\/details>\n\nGo left\./)

  await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${answer.session_id}`), app)
  const openWebUi = {
    id: 'owui-1',
    title: 'Riddle',
    chat: {
      history: {
        currentId: 'b',
        messages: {
          a: { id: 'a', parentId: null, role: 'user', content: 'A riddle?', timestamp: 1_700_000_000 },
          b: {
            id: 'b', parentId: 'a', role: 'assistant', model: 'qwen3:8b', timestamp: 1_700_000_010,
            content: '<details type="reasoning" done="true" duration="12">\n<summary>Thought for 12 seconds</summary>\n> The user wants\n> a riddle.\n</details>\nWhat has keys but no locks? A piano.',
          },
        },
      },
    },
  }
  const chatGpt = {
    id: 'cg-1', conversation_id: 'cg-1', title: 'Sum', create_time: 1_700_000_000, current_node: 'answer',
    mapping: {
      root: { id: 'root', parent: null, children: ['q'], message: null },
      q: { id: 'q', parent: 'root', children: ['thoughts'], message: { author: { role: 'user' }, create_time: 1_700_000_001, content: { content_type: 'text', parts: ['2+2?'] } } },
      thoughts: { id: 'thoughts', parent: 'q', children: ['recap'], message: { author: { role: 'assistant' }, create_time: 1_700_000_002, content: { content_type: 'thoughts', thoughts: [{ summary: 'Adding', content: 'Two and two make four.' }] } } },
      recap: { id: 'recap', parent: 'thoughts', children: ['answer'], message: { author: { role: 'assistant' }, create_time: 1_700_000_003, content: { content_type: 'reasoning_recap', content: 'Thought for 1m 5s' } } },
      answer: { id: 'answer', parent: 'recap', children: [], message: { author: { role: 'assistant' }, create_time: 1_700_000_004, content: { content_type: 'text', parts: ['4'] }, metadata: { model_slug: 'o3' } } },
    },
  }
  const result = await json(await importFile.fetch(toRequest('POST /v1/import', [exported, openWebUi, chatGpt]), app))
  assert.equal(result.imported.length, 3, JSON.stringify(result))
  const replies = []
  for (const imported of result.imported) replies.push((await messagesOf(app, imported.session_id)).filter((message: any) => message.role === 'assistant').map((message: any) => [message.content, message.thinking, message.thinking_ms]))
  assert.deepEqual(replies, [
    [['Go left.', 'weigh options', answer.thinking_ms]],
    [['What has keys but no locks? A piano.', 'The user wants\na riddle.', 12_000]],
    [['4', 'Adding\n\nTwo and two make four.', 65_000]],
  ])

  const bad = await json(await importFile.fetch(toRequest('POST /v1/import', [{ ...exported, session: { ...exported.session, id: randomUUID() }, messages: exported.messages.map((message: any) => (message.role === 'assistant' ? { ...message, thinking: 42 } : message)) }]), app))
  assert.match(bad.skipped[0].reason, /thinking/)
})
