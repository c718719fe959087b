/**
 * The tool loop (docs/tools.md): POST /v1/chat with `tools` runs the model's calls against MCP
 * servers made with the official SDK, within its limits, and stores every step. The fake Ollama
 * calls tools on cue. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import chat from '../functions/chat.ts'
import metrics from '../functions/metrics.ts'
import conversationItems from '../functions/openai-conversation-items-list.ts'
import sessionCancel from '../functions/session-cancel.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionsList from '../functions/sessions-list.ts'
import sessionRegenerate from '../functions/session-regenerate.ts'
import type { AppContext } from '../lib/context.ts'
import { authServer, chatRequest, fakeOllama, json, readSse, recordingLogger, rowCounts, sseEvents, storedRows, take, takeText, testApp, testServer, toRequest, within, type SseEvent } from './support/app.ts'
import sessionStream from '../functions/session-stream.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionExport from '../functions/session-export.ts'
import importFile from '../functions/import.ts'
import toolCallAnswer from '../functions/tool-call-answer.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { rawStdioServer } from './support/mcp-raw-stdio-server.ts'
import { startMcpHttpServer, type McpHttpServer } from './support/mcp-http-server.ts'
import { PROJECT_ROOT } from './support/process.ts'

const TOKEN = 'mcp-loop-secret-2718'

/** An MCP_CONFIG with the test server as `calc` (every tool `auto` but `delete_all`, denied, and those `ask` names). */
function calcConfig(mcp: McpHttpServer, servers: Record<string, unknown> = {}, ask: string[] = []): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  const policies = Object.fromEntries([['delete_all', 'deny'], ...ask.map((name) => [name, 'ask'])])
  writeFileSync(path, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto', tools: policies }, ...servers } }))
  return path
}

async function toolsSetup(t: TestContext, env: Record<string, string> = {}, servers: Record<string, unknown> = {}, ask: string[] = []) {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const path = calcConfig(mcp, servers, ask)
  const log = recordingLogger()
  const app = await testApp(t, fake, { MCP_CONFIG: path, ...env }, log)
  t.after(() => app.tools.close())
  return { fake, mcp, app, log }
}

const messagesOf = async (app: AppContext, sessionId: string) =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
/** Resolves once the MCP server has seen `count` cancellations (they arrive as a notification, after the call's end here). */
const cancelledOnServer = (mcp: McpHttpServer, count = 1) => within(10_000, 'the server to see the cancel', (async () => {
  while (mcp.cancelled < count) await new Promise((resolve) => setTimeout(resolve, 10))
})())
const ofType = (events: SseEvent[], type: string) => events.filter((event) => event.data.type === type).map((event) => event.data)
const sentMessages = (fake: FakeOllama, index: number) => fake.chatRequests()[index]!.body.messages.map((message: any) => {
  const { role, content, tool_calls: calls, tool_name: toolName } = message
  return { role, content, ...(calls ? { calls: calls.map((call: any) => [call.function.name, call.function.arguments]) } : {}), ...(toolName ? { tool_name: toolName } : {}) }
})

test('a tool the model calls runs on its MCP server; the call, its result and the answer are streamed, stored in order, and sent again later', async (t) => {
  const { fake, mcp, app, log } = await toolsSetup(t)
  const response = await chat.fetch(chatRequest({ message: 'Add them [[call calc__add {"a":2,"b":3}]]', model: 'qwen3:8b', tools: true }), app)
  const { events } = await readSse(response)
  const types = events.map((event) => event.data.type)
  assert.deepEqual(types.filter((type) => type !== 'token'), ['start', 'tool_call', 'tool_result', 'done'])
  assert.ok(types.indexOf('tool_call') > types.indexOf('token'), 'the text before the calls comes first')
  const [call] = ofType(events, 'tool_call')
  assert.deepEqual([call.name, call.arguments], ['calc__add', { a: 2, b: 3 }])
  assert.match(call.call_id, /^call_[0-9a-f]{32}$/)
  const [result] = ofType(events, 'tool_result')
  assert.deepEqual([result.call_id, result.name, result.ok, result.content], [call.call_id, 'calc__add', true, '5'])
  assert.equal(typeof result.duration_ms, 'number')
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 2, b: 3 } }])
  // Every event has an id, in order, as any reply's.
  assert.deepEqual(events.map((event) => Number(event.id!.split(':')[1])), events.map((_, index) => index + 1))
  const done = ofType(events, 'done')[0]
  assert.equal(done.done_reason, 'stop')

  // The model was asked again with the call and its result; the tools went with both requests.
  const sessionId = events[0]!.data.session_id
  assert.equal(fake.chatRequests().length, 2)
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['calc__add', 'calc__search', 'calc__slow', 'calc__fail', 'calc__big', 'calc__chart', 'calc__steps', 'calc__ask'])
  assert.equal(fake.chatRequests()[0]!.body.tools[0].function.parameters.properties.b.minimum, 0)
  assert.deepEqual(sentMessages(fake, 1).slice(-2), [
    { role: 'assistant', content: 'Let me check.', calls: [['calc__add', { a: 2, b: 3 }]] },
    { role: 'tool', content: '5', tool_name: 'calc__add' },
  ])
  const listed = await messagesOf(app, sessionId)
  assert.deepEqual(listed.map((message: any) => [message.role, message.content, message.status]), [
    ['user', 'Add them [[call calc__add {"a":2,"b":3}]]', 'complete'],
    ['assistant', 'Let me check.', 'complete'],
    ['tool', '5', 'complete'],
    ['assistant', 'The tools said: 5', 'complete'],
  ])
  assert.deepEqual(listed[1].tool_calls, [{ call_id: call.call_id, name: 'calc__add', arguments: { a: 2, b: 3 } }])
  assert.deepEqual([listed[2].call_id, listed[2].name], [call.call_id, 'calc__add'])
  assert.equal(listed[3].id, done.message_id, 'the reply is the last message, with the id its events carried')
  // As conversation items (OpenAI's API): the result is the output of its call.
  const items = (await json(await conversationItems.fetch(toRequest(`GET /v1/conversations/conv_${sessionId.replaceAll('-', '')}/items?order=asc`), app))).data
  assert.deepEqual(items.map((item: any) => [item.type, item.role ?? item.call_id]), [['message', 'user'], ['message', 'assistant'], ['function_call_output', call.call_id], ['message', 'assistant']])
  assert.equal(items[2].output, '5')

  // The next turn sends the history exactly as it happened.
  await readSse(await chat.fetch(chatRequest({ message: 'Thanks', session_id: sessionId, model: 'qwen3:8b' }), app))
  assert.deepEqual(sentMessages(fake, 2), [
    { role: 'user', content: 'Add them [[call calc__add {"a":2,"b":3}]]' },
    { role: 'assistant', content: 'Let me check.', calls: [['calc__add', { a: 2, b: 3 }]] },
    { role: 'tool', content: '5', tool_name: 'calc__add' },
    { role: 'assistant', content: 'The tools said: 5' },
    { role: 'user', content: 'Thanks' },
  ])
  assert.equal(fake.chatRequests()[2]!.body.tools, undefined, 'a turn without tools offers none')
  assert.ok(!JSON.stringify(log.entries).includes(TOKEN))
  const exposition = await (await metrics.fetch(toRequest('GET /metrics'), app)).text()
  assert.match(exposition, /chat_ollama_tool_calls_total\{server="calc",tool="add",outcome="ok"\} 1/)
  assert.match(exposition, /chat_ollama_tool_call_duration_seconds_count\{server="calc"\} 1/)
})

test('arguments are checked against the tool\'s own schema (what Ollama drops included): a failed check goes back to the model, the tool is not called', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  const answer = await json(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":2,"b":-1}]] [[call calc__nothing {}]]', model: 'qwen3:8b', tools: ['calc__add'], stream: false }), app))
  assert.equal(mcp.calls.length, 0)
  const tools = sentMessages(fake, 1).filter((message: any) => message.role === 'tool')
  assert.equal(tools.length, 2)
  assert.match(tools[0].content, /^Invalid arguments for calc__add: b: .*0/)
  assert.match(tools[1].content, /No tool named "calc__nothing" is offered; use one of: calc__add/)
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['calc__add'], 'only the tools asked for')
  const listed = await messagesOf(app, answer.session_id)
  assert.deepEqual(listed.filter((message: any) => message.role === 'tool').map((message: any) => message.status), ['error', 'error'])
  assert.match(answer.content, /^The tools said: Invalid arguments/)
})

test('tools that cannot be used are refused before anything is stored: unknown, denied, a model without the capability, no MCP_CONFIG', async (t) => {
  const { fake, app } = await toolsSetup(t)
  fake.capabilities['llama3.2:latest'] = ['completion']
  const refusals: Array<[Record<string, unknown>, number, RegExp]> = [
    [{ tools: ['calc__nope'] }, 400, /tools\[0\]: "calc__nope" cannot be used/],
    [{ tools: ['calc__add', 'calc__delete_all'] }, 400, /tools\[1\]: "calc__delete_all"/],
    [{ tools: ['other__add'] }, 400, /tools\[0\]/],
    [{ tools: 'all' }, 400, /tools/],
    [{ tools: true, model: 'llama3.2' }, 400, /cannot call tools: Ollama does not list 'tools'/],
  ]
  for (const [body, status, detail] of refusals) {
    const response = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', ...body }), app)
    const problem = await json(response)
    assert.equal(response.status, status, JSON.stringify(problem))
    assert.match(problem.detail, detail)
  }
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(fake.chatRequests().length, 0)
  const without = await testApp(t, fake)
  const response = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: true }), without)
  assert.equal(response.status, 400)
  assert.match((await json(response)).detail, /MCP_CONFIG/)
})

test('a tool that does not answer is cancelled at TOOL_TIMEOUT (the server sees the cancel); the model gets the failure and answers', async (t) => {
  const { mcp, app } = await toolsSetup(t, { TOOL_TIMEOUT: '200ms' })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: '[[call calc__slow {}]]', model: 'qwen3:8b', tools: true }), app))
  const [result] = ofType(events, 'tool_result')
  assert.equal(result.ok, false)
  assert.match(result.content, /did not answer within 200ms \(TOOL_TIMEOUT\)/)
  assert.equal(ofType(events, 'done')[0].done_reason, 'stop')
  await cancelledOnServer(mcp)
})

test('the repeat rule: the same call again gets its earlier result marked repeated; a third time is not run and ends the turn', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  const add = { name: 'calc__add', arguments: { b: 4, a: 1 } }
  fake.next({ toolCalls: [add], tokens: [] }).next({ toolCalls: [{ name: 'calc__add', arguments: { a: 1, b: 4 } }], tokens: [] }).next({ toolCalls: [add], tokens: ['Giving up.'] })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'add', model: 'qwen3:8b', tools: true }), app))
  const results = ofType(events, 'tool_result')
  assert.deepEqual(results.map((result) => result.ok), [true, true, false])
  assert.equal(results[0].content, '5')
  assert.match(results[1].content, /^\[Repeated call: the tool was not called again; its earlier result follows\.\]\n5$/)
  assert.match(results[2].content, /third time/)
  assert.equal(mcp.calls.length, 1, 'called once')
  assert.equal(fake.chatRequests().length, 3, 'no model call after the third')
  const done = ofType(events, 'done')[0]
  assert.equal(done.done_reason, 'tool_repeat')
  const listed = await messagesOf(app, events[0]!.data.session_id)
  assert.deepEqual(listed.at(-1).content, 'Giving up.', 'the turn ends with what the model has')
  assert.deepEqual(listed.map((message: any) => message.role), ['user', 'assistant', 'tool', 'assistant', 'tool', 'assistant', 'tool', 'assistant'])
})

test('limits: MAX_TOOL_STEPS model calls a turn, results cut at TOOL_RESULT_MAX_BYTES, and every call gets a result', async (t) => {
  const { fake, app } = await toolsSetup(t, { MAX_TOOL_STEPS: '2', TOOL_RESULT_MAX_BYTES: '1KiB' })
  fake.next({ toolCalls: [{ name: 'calc__big', arguments: { size: 5000 } }], tokens: [] }).next({ toolCalls: [{ name: 'calc__add', arguments: { a: 1, b: 1 } }, { name: 'calc__add', arguments: { a: 2, b: 2 } }], tokens: ['Still working'] })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'go', model: 'qwen3:8b', tools: true }), app))
  const results = ofType(events, 'tool_result')
  assert.equal(results.length, 3)
  assert.ok(Buffer.byteLength(results[0].content) <= 1024, String(Buffer.byteLength(results[0].content)))
  assert.match(results[0].content, /^é+\n\[…cut at TOOL_RESULT_MAX_BYTES\]$/)
  assert.deepEqual(results.slice(1).map((result) => [result.ok, /MAX_TOOL_STEPS/.test(result.content)]), [[false, true], [false, true]])
  assert.equal(fake.chatRequests().length, 2)
  assert.equal(ofType(events, 'done')[0].done_reason, 'tool_limit')
  const listed = await messagesOf(app, events[0]!.data.session_id)
  assert.equal(listed.at(-1).content, 'Still working')
  assert.equal(listed.filter((message: any) => message.role === 'tool').length, 3)
})

test('cancel during a tool call stops it at once through the SDK (the server sees notifications/cancelled); the reply ends cancelled', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  const response = await chat.fetch(chatRequest({ message: '[[call calc__slow {}]]', model: 'qwen3:8b', tools: true }), app)
  const live = sseEvents(response)
  const [start] = await take(live, 1)
  await within(10_000, 'the tool call', mcp.slowCalled())
  const cancelled = await sessionCancel.fetch(toRequest(`POST /v1/sessions/${start!.data.session_id}/cancel`), app)
  assert.equal(cancelled.status, 200)
  const rest: SseEvent[] = []
  for await (const event of live) if ('data' in event) rest.push(event)
  const [result] = ofType(rest, 'tool_result')
  assert.deepEqual([result.ok, result.content], [false, 'Cancelled: the turn was stopped.'])
  assert.equal(ofType(rest, 'done')[0].done_reason, 'cancelled')
  await cancelledOnServer(mcp)
  assert.equal(fake.chatRequests().length, 1, 'the model is not asked again')
  const listed = await messagesOf(app, start!.data.session_id)
  assert.deepEqual(listed.map((message: any) => [message.role, message.status]), [['user', 'complete'], ['assistant', 'complete'], ['tool', 'error'], ['assistant', 'cancelled']])
})

test('a failing tool and a crashed stdio server give failed results; the turn goes on', async (t) => {
  const script = join(PROJECT_ROOT, 'test/support/mcp-stdio-server.ts')
  const { fake, app } = await toolsSetup(t, {}, { broken: { command: process.execPath, args: ['--import', 'tsx', script], env: { CRASH_AFTER_START: '1' }, default: 'auto' } })
  fake.next({ toolCalls: [{ name: 'calc__fail', arguments: {} }, { name: 'broken__echo', arguments: { text: 'x' } }], tokens: [] })
  const answer = await json(await chat.fetch(chatRequest({ message: 'try', model: 'qwen3:8b', tools: ['calc__fail'], stream: false }), app))
  const tools = sentMessages(fake, 1).filter((message: any) => message.role === 'tool')
  assert.deepEqual(tools.map((message: any) => message.content.slice(0, 30)), ['the disk is on fire', 'No tool named "broken__echo" i'])
  assert.match(answer.content, /the disk is on fire/)
  // Asked for by name, the crashed server's tool is refused up front.
  const refused = await chat.fetch(chatRequest({ message: 'try', model: 'qwen3:8b', tools: ['broken__echo'] }), app)
  assert.equal(refused.status, 400)
  assert.match((await json(refused)).detail, /its server broken cannot be reached now/)
})

test('regenerating a reply that used tools runs the whole turn again from the question', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  const first = await json(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":1,"b":2}]]', model: 'qwen3:8b', tools: true, stream: false }), app))
  const again = await json(await sessionRegenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${first.id}/regenerate`, { stream: false, tools: true }), app))
  assert.equal(again.content, 'The tools said: 3')
  assert.equal(mcp.calls.length, 2)
  assert.deepEqual(sentMessages(fake, 2).map((message: any) => message.role), ['user'], 'from the question, not from the last tool result')
})

const answer = (app: AppContext, sessionId: string, callId: string, approve: unknown) =>
  toolCallAnswer.fetch(toRequest(`POST /v1/sessions/${sessionId}/tool-calls/${callId}`, { approve }), app)

/** Polls the stored reply until it is no longer waiting or streaming (the clock resumes it at its own time). */
async function settledReply(app: AppContext, sessionId: string) {
  return within(10_000, 'the reply to settle', (async () => {
    for (;;) {
      const reply = (await messagesOf(app, sessionId)).at(-1)
      if (!['awaiting_approval', 'streaming'].includes(reply.status)) return reply
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })())
}

test('an ask tool pauses the reply until its user approves; the reply then goes on, its events after the earlier ones', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t, {}, {}, ['add'])
  const { events } = await readSse(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":4,"b":5}]]', model: 'qwen3:8b', tools: true }), app))
  assert.deepEqual(events.map((event) => event.data.type).filter((type) => type !== 'token'), ['start', 'tool_call', 'approval_required', 'done'])
  const [waiting] = ofType(events, 'approval_required')
  assert.deepEqual([waiting.name, waiting.arguments], ['calc__add', { a: 4, b: 5 }])
  assert.equal(ofType(events, 'done')[0].done_reason, 'awaiting_approval')
  assert.equal(mcp.calls.length, 0, 'not called before it is approved')
  const sessionId = events[0]!.data.session_id
  const paused = (await messagesOf(app, sessionId)).at(-1)
  assert.equal(paused.status, 'awaiting_approval')
  assert.deepEqual(paused.approval_required.map((call: any) => [call.call_id, call.name, call.arguments]), [[waiting.call_id, 'calc__add', { a: 4, b: 5 }]])
  assert.match(paused.approval_required[0].expires_at, /Z$/)

  // Nothing else goes on in the session meanwhile; a bad answer changes nothing.
  const busy = await chat.fetch(chatRequest({ message: 'next', session_id: sessionId, model: 'qwen3:8b' }), app)
  assert.equal(busy.status, 409)
  assert.match((await json(busy)).detail, /waits for the approval of calc__add/)
  assert.equal((await answer(app, sessionId, waiting.call_id, 'yes')).status, 400)
  assert.equal((await answer(app, sessionId, `call_${'0'.repeat(32)}`, true)).status, 404)
  assert.equal((await answer(app, '00000000-0000-4000-8000-000000000000', waiting.call_id, true)).status, 404)

  const approved = await answer(app, sessionId, waiting.call_id, true)
  assert.equal(approved.status, 200)
  assert.deepEqual(await json(approved), { call_id: waiting.call_id, approved: true })
  const again = await answer(app, sessionId, waiting.call_id, false)
  assert.equal(again.status, 409)
  const rest = (await readSse(await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, { 'last-event-id': events.at(-1)!.id! }), app))).events
  assert.deepEqual(rest.map((event) => event.data.type).filter((type) => type !== 'token'), ['start', 'tool_result', 'done'])
  assert.equal(rest[0]!.data.resumed, true)
  assert.deepEqual(rest.map((event) => Number(event.id!.split(':')[1])), rest.map((_, index) => events.length + index + 1), 'ids go on from the paused part')
  assert.deepEqual(ofType(rest, 'tool_result').map((result) => [result.call_id, result.ok, result.content]), [[waiting.call_id, true, '9']])
  assert.equal(ofType(rest, 'done')[0].done_reason, 'stop')
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 4, b: 5 } }])
  // Coming back once it ended, with the id of its last event seen: the very events it missed; with the last id of all, 204.
  const later = (await readSse(await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, { 'last-event-id': events.at(-1)!.id! }), app))).events
  assert.deepEqual(later, rest)
  assert.equal((await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, { 'last-event-id': rest.at(-1)!.id! }), app)).status, 204)
  assert.equal((await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`), app)).status, 404, 'without one: no reply runs')
  const listed = await messagesOf(app, sessionId)
  assert.deepEqual(listed.map((message: any) => [message.role, message.content, message.status]), [
    ['user', '[[call calc__add {"a":4,"b":5}]]', 'complete'],
    ['assistant', 'Let me check.', 'complete'],
    ['tool', '9', 'complete'],
    ['assistant', 'The tools said: 9', 'complete'],
  ])
  assert.equal(listed.at(-1).id, events[0]!.data.message_id)
  assert.deepEqual(sentMessages(fake, 1).slice(-2), [
    { role: 'assistant', content: 'Let me check.', calls: [['calc__add', { a: 4, b: 5 }]] },
    { role: 'tool', content: '9', tool_name: 'calc__add' },
  ])
})

test('a denied call, and one nobody answers within TOOL_APPROVAL_TIMEOUT, are not run: the model gets the denial and answers', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t, {}, {}, ['add', 'search'])
  const first = await json(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":1,"b":1}]]', model: 'qwen3:8b', tools: true, stream: false }), app))
  assert.equal(first.done_reason, 'awaiting_approval')
  const [call] = first.approval_required
  assert.deepEqual(await json(await answer(app, first.session_id, call.call_id, false)), { call_id: call.call_id, approved: false })
  const denied = await settledReply(app, first.session_id)
  assert.equal(denied.content, 'The tools said: Denied: the user did not allow this call.')

  // Two calls wait; one is approved in time, the other runs out: the clock resumes the reply.
  fake.next({ toolCalls: [{ name: 'calc__add', arguments: { a: 2, b: 2 } }, { name: 'calc__search', arguments: { query: 'x' } }], tokens: [] })
  const second = await json(await chat.fetch(chatRequest({ message: 'two', model: 'qwen3:8b', tools: true, stream: false }), app))
  assert.equal(second.approval_required.length, 2)
  const answered = await json(await answer(app, second.session_id, second.approval_required[0].call_id, true))
  assert.equal(answered.approved, true)
  assert.equal((await messagesOf(app, second.session_id)).at(-1).status, 'awaiting_approval', 'one call still waits')
  // The other call's time runs out (moved into the past, not waited for): the clock, set for it, denies it and resumes the reply.
  await storedRows(app, 'UPDATE tool_approvals SET expires_at = ? WHERE call_id = ?', '2000-01-01T00:00:00.000Z', second.approval_required[1].call_id)
  await app.approvals.refresh()
  const settled = await settledReply(app, second.session_id)
  assert.equal(settled.status, 'complete')
  assert.match(settled.content, /^The tools said: 4 \| Denied: nobody approved this call within 600s \(TOOL_APPROVAL_TIMEOUT\)\.$/)
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 2, b: 2 } }])
  assert.equal((await answer(app, second.session_id, second.approval_required[1].call_id, true)).status, 409, 'too late')
  const exposition = await (await metrics.fetch(toRequest('GET /metrics'), app)).text()
  assert.match(exposition, /chat_ollama_tool_calls_total\{server="calc",tool="search",outcome="denied"\} 1/)
  assert.match(exposition, /chat_ollama_tool_calls_total\{server="calc",tool="add",outcome="denied"\} 1/)
})

test('a waiting call outlives the server: after a restart on the same database its approval resumes the reply; a shutdown does not wait for it', async (t) => {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = { MCP_CONFIG: calcConfig(mcp, {}, ['add']), DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-restart-')), 'chat.db') }
  const first = await testServer(t, fake, config)
  const database: Record<string, string> = first.app.config.databaseUrl ? { DATABASE_URL: first.app.config.databaseUrl } : {}
  const paused = await json(await fetch(`${first.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: '[[call calc__add {"a":20,"b":22}]]', model: 'qwen3:8b', tools: true, stream: false }) }))
  assert.equal(paused.done_reason, 'awaiting_approval')
  await within(10_000, 'a shutdown with a reply waiting', first.shutdown())

  const second = await testServer(t, fake, { ...config, ...database })
  const listed = await json(await fetch(`${second.url}/v1/sessions/${paused.session_id}/messages`))
  assert.equal(listed.messages.at(-1).status, 'awaiting_approval')
  const approved = await fetch(`${second.url}/v1/sessions/${paused.session_id}/tool-calls/${paused.approval_required[0].call_id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ approve: true }) })
  assert.equal(approved.status, 200)
  // Following it with the id of an event it sent (here its first): the rest, live or, if it ended meanwhile, as stored.
  const { events } = await readSse(await fetch(`${second.url}/v1/sessions/${paused.session_id}/stream`, { headers: { 'last-event-id': `${paused.id}:1` } }))
  assert.equal(ofType(events, 'done')[0]?.done_reason, 'stop', JSON.stringify(events.map((event) => event.data.type)))
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 20, b: 22 } }])
  if (!first.app.config.databaseUrl) return

  // On PostgreSQL, any instance takes the answer to a call another one paused for, while both run.
  const third = await testServer(t, fake, { ...config, ...database, INSTANCE_ID: 'third' })
  const waiting = await json(await fetch(`${second.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: '[[call calc__add {"a":1,"b":1}]]', model: 'qwen3:8b', tools: true, stream: false }) }))
  const elsewhere = await fetch(`${third.url}/v1/sessions/${waiting.session_id}/tool-calls/${waiting.approval_required[0].call_id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ approve: true }) })
  assert.equal(elsewhere.status, 200)
  const resumed = await readSse(await fetch(`${second.url}/v1/sessions/${waiting.session_id}/stream`, { headers: { 'last-event-id': `${waiting.id}:1` } }))
  assert.equal(ofType(resumed.events, 'done')[0]?.done_reason, 'stop', 'followed from the instance that paused it')
  assert.equal(mcp.calls.length, 2)
})

test('another user\'s waiting call is answered as a missing one, and stays waiting', async (t) => {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const server = await authServer(t, fake, { MCP_CONFIG: calcConfig(mcp, {}, ['add']) })
  const alice = await server.userWithKey('alice')
  const bob = await server.userWithKey('bob')
  const post = (path: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  const paused = await json(await post('/v1/chat', { message: '[[call calc__add {"a":1,"b":2}]]', model: 'qwen3:8b', tools: true, stream: false }, alice.headers))
  const callPath = `/v1/sessions/${paused.session_id}/tool-calls/${paused.approval_required[0].call_id}`
  const theirs = await post(callPath, { approve: true }, bob.headers)
  const missing = await post(`/v1/sessions/${paused.session_id}/tool-calls/call_${'1'.repeat(32)}`, { approve: true }, bob.headers)
  assert.deepEqual([theirs.status, missing.status], [404, 404])
  const [theirsBody, missingBody] = [await json(theirs), await json(missing)]
  assert.equal(theirsBody.detail.replace(paused.approval_required[0].call_id, 'X'), missingBody.detail.replace(`call_${'1'.repeat(32)}`, 'X'), 'the same answer')
  assert.equal((await post(callPath, { approve: true }, {})).status, 401)
  assert.equal(mcp.calls.length, 0)
  const listed = await json(await fetch(`${server.url}/v1/sessions/${paused.session_id}/messages`, { headers: alice.headers }))
  assert.equal(listed.messages.at(-1).status, 'awaiting_approval')
})

test('a turn resumed by its approval takes one of its user\'s MAX_CONCURRENT_CHATS_PER_USER slots: with none free it waits, queued, and goes on once one is', async (t) => {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const server = await authServer(t, fake, { MCP_CONFIG: calcConfig(mcp, {}, ['add']), MAX_CONCURRENT_CHATS_PER_USER: '1' })
  const alice = await server.userWithKey('alice')
  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...alice.headers }, body: JSON.stringify(body) })
  const paused = [await json(await post('/v1/chat', { message: '[[call calc__add {"a":1,"b":2}]]', model: 'qwen3:8b', tools: true, stream: false })), await json(await post('/v1/chat', { message: '[[call calc__add {"a":3,"b":4}]]', model: 'qwen3:8b', tools: true, stream: false }))]
  const statusOf = async (sessionId: string) => (await json(await fetch(`${server.url}/v1/sessions/${sessionId}/messages`, { headers: alice.headers }))).messages.at(-1).status
  // Her one slot is taken by a reply that runs until it is cancelled.
  fake.next({ tokens: ['busy ', 'still'], stallAfterTokens: 1 })
  const running = sseEvents(await post('/v1/chat', { message: 'keep going' }))
  const [start] = await takeText(running, 'busy ')
  for (const reply of paused) {
    const answered = await post(`/v1/sessions/${reply.session_id}/tool-calls/${reply.approval_required[0].call_id}`, { approve: true })
    assert.equal(answered.status, 200, 'the approval is taken, also with no slot free')
  }
  await server.app.approvals.sweep()
  assert.deepEqual(await Promise.all(paused.map((reply) => statusOf(reply.session_id))), ['awaiting_approval', 'awaiting_approval'], 'queued: neither resumed beside the running reply')
  assert.equal(server.app.generations.size, 1)
  assert.equal(mcp.calls.length, 0)
  // The slot comes free: the queued turns go on, one at a time.
  assert.equal((await post(`/v1/sessions/${start!.data.session_id}/cancel`, undefined)).status, 200)
  for (let round = 0; round < 2; round++) {
    await server.app.approvals.sweep()
    assert.ok(server.app.generations.size <= 1, 'never more than her one slot')
    await within(10_000, 'a queued turn to finish', (async () => {
      while (server.app.generations.size > 0) await new Promise((resolve) => setTimeout(resolve, 10))
    })())
  }
  assert.deepEqual(await Promise.all(paused.map((reply) => statusOf(reply.session_id))), ['complete', 'complete'])
  assert.equal(mcp.calls.length, 2)
})

test('a stdio server that dies during a call gives that call a failed result at once, and is started again for the next; a secret in a tool\'s answer is masked', async (t) => {
  const script = join(PROJECT_ROOT, 'test/support/mcp-stdio-server.ts')
  const secret = 'stdio-env-secret-2718281828'
  const { fake, app, log } = await toolsSetup(t, {}, { local: { command: process.execPath, args: ['--import', 'tsx', script], env: { SECRET_TOKEN: secret }, default: 'auto' } })
  fake.next({ toolCalls: [{ name: 'local__crash', arguments: {} }], tokens: [] })
  const crashed = await json(await chat.fetch(chatRequest({ message: 'crash', model: 'qwen3:8b', tools: ['local__crash', 'local__whoami'], stream: false }), app))
  const [result] = sentMessages(fake, 1).filter((message: any) => message.role === 'tool')
  assert.match(result.content, /^The tool call failed: /)
  assert.match(crashed.content, /^The tools said: The tool call failed/)

  fake.next({ toolCalls: [{ name: 'local__whoami', arguments: {} }], tokens: [] })
  const answer = await json(await chat.fetch(chatRequest({ message: 'who', model: 'qwen3:8b', tools: ['local__whoami'], stream: false }), app))
  assert.equal(answer.content, 'The tools said: token=***')
  const everything = JSON.stringify([await messagesOf(app, answer.session_id), fake.chatRequests().map((request) => request.body), log.entries])
  assert.ok(!everything.includes(secret), 'not in an answer, the store, what the model is sent, or the log')
})

test('a step\'s calls run at most 4 at once: a fifth waits for one of them; a cancel ends them all', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  fake.next({ toolCalls: Array.from({ length: 6 }, (_, index) => ({ name: 'calc__slow', arguments: { n: index } })), tokens: [] })
  const response = await chat.fetch(chatRequest({ message: 'six', model: 'qwen3:8b', tools: ['calc__slow'] }), app)
  const live = sseEvents(response)
  const [start] = await take(live, 1)
  await within(10_000, 'four calls running', mcp.slowCalled(4))
  // None of the four can end before the cancel, so no fifth can have started.
  assert.equal(mcp.calls.filter((call) => call.name === 'slow').length, 4)
  await sessionCancel.fetch(toRequest(`POST /v1/sessions/${start!.data.session_id}/cancel`), app)
  const rest: SseEvent[] = []
  for await (const event of live) if ('data' in event) rest.push(event)
  assert.equal(ofType(rest, 'tool_result').length, 6, 'every call gets a result')
  assert.ok(ofType(rest, 'tool_result').every((result) => result.content === 'Cancelled: the turn was stopped.'))
  assert.equal(mcp.calls.filter((call) => call.name === 'slow').length, 4, 'the two that waited never ran')
  await cancelledOnServer(mcp, 4)
})

test('Ollama failing on the model call after a step: the reply ends in error, the step stays stored', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t)
  fake.next({ toolCalls: [{ name: 'calc__add', arguments: { a: 1, b: 1 } }], tokens: ['Adding.'] }).next({ status: 503 })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'add', model: 'qwen3:8b', tools: true }), app))
  assert.deepEqual(events.map((event) => event.data.type).filter((type) => type !== 'token'), ['start', 'tool_call', 'tool_result', 'error'])
  assert.equal(mcp.calls.length, 1)
  const listed = await messagesOf(app, events[0]!.data.session_id)
  assert.deepEqual(listed.map((message: any) => [message.role, message.content, message.status]), [
    ['user', 'add', 'complete'],
    ['assistant', 'Adding.', 'complete'],
    ['tool', '2', 'complete'],
    ['assistant', '', 'error'],
  ])
})

test('an exported chat with tool steps imports back the same: calls, results and their order; Markdown names them', async (t) => {
  const { app } = await toolsSetup(t)
  const first = await json(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":2,"b":3}]]', model: 'qwen3:8b', tools: true, stream: false }), app))
  const shape = (messages: any[]) => messages.map((message) => [message.role, message.content, message.status, message.tool_calls ?? null, message.call_id ?? null, message.name ?? null])
  const before = shape(await messagesOf(app, first.session_id))
  const exported = await json(await sessionExport.fetch(toRequest(`GET /v1/sessions/${first.session_id}/export`), app))
  const markdown = await (await sessionExport.fetch(toRequest(`GET /v1/sessions/${first.session_id}/export?format=markdown`), app)).text()
  assert.match(markdown, /\*\[calls calc__add with \{"a":2,"b":3\}\]\*/)
  assert.match(markdown, /## Tool \(calc__add\)\n\n5/)
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${first.session_id}`), app)).status, 204)

  const imported = await json(await importFile.fetch(toRequest('POST /v1/import', exported), app))
  assert.equal(imported.imported.length, 1, JSON.stringify(imported))
  const after = await messagesOf(app, imported.imported[0].session_id)
  assert.deepEqual(shape(after), before)
  assert.deepEqual(after.slice(1).map((message: any) => message.parent_id), after.slice(0, -1).map((message: any) => message.id), 'one path, in order')
  // A tool result without its call's id is not a file this server wrote: that conversation is skipped.
  const forged = { ...exported, session: { ...exported.session, id: crypto.randomUUID() }, messages: exported.messages.map((message: any) => (message.role === 'tool' ? { ...message, call_id: undefined } : message)) }
  const refused = await json(await importFile.fetch(toRequest('POST /v1/import', forged), app))
  assert.match(refused.skipped[0].reason, /tool result has no call_id/)
})

test('a reply resumed after its approval while Ollama is down ends in error; the approved call and its result stay stored', async (t) => {
  const { fake, mcp, app } = await toolsSetup(t, {}, {}, ['add'])
  const paused = await json(await chat.fetch(chatRequest({ message: '[[call calc__add {"a":3,"b":4}]]', model: 'qwen3:8b', tools: true, stream: false }), app))
  fake.next({ status: 503 })
  assert.equal((await answer(app, paused.session_id, paused.approval_required[0].call_id, true)).status, 200)
  const ended = await settledReply(app, paused.session_id)
  assert.equal(ended.status, 'error')
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 3, b: 4 } }])
  const listed = await messagesOf(app, paused.session_id)
  assert.deepEqual(listed.map((message: any) => [message.role, message.content, message.status]), [
    ['user', '[[call calc__add {"a":3,"b":4}]]', 'complete'],
    ['assistant', 'Let me check.', 'complete'],
    ['tool', '7', 'complete'],
    ['assistant', '', 'error'],
  ])
  // Nothing waits any more: the session takes a new turn.
  assert.equal((await chat.fetch(chatRequest({ message: 'again?', session_id: paused.session_id, model: 'qwen3:8b', stream: false }), app)).status, 200)
})

test('tools named like Object\'s own properties keep their policy on /v1/chat: constructor asks, a denied toString is not offered, __proto__ asks', async (t) => {
  const odd = rawStdioServer(['constructor', 'toString', '__proto__'], { tools: { toString: 'deny' } })
  const { app } = await toolsSetup(t, {}, { odd })
  const refused = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: ['odd__toString'] }), app)
  assert.equal(refused.status, 400)
  assert.match((await json(refused)).detail, /odd__toString/)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: '[[call odd__constructor {}]] [[call odd____proto__ {}]] [[call odd__toString {}]]', model: 'qwen3:8b', tools: true }), app))
  assert.deepEqual(ofType(events, 'approval_required').map((call) => call.name), ['odd__constructor', 'odd____proto__'])
  const results = ofType(events, 'tool_result')
  assert.deepEqual(results.map((result) => [result.name, result.ok]), [['odd__toString', false]])
  assert.match(results[0].content, /No tool named "odd__toString" is offered/)
  assert.ok(!JSON.stringify(events).includes('ran with'), 'nothing ran')
})

test('a turn offers at most MAX_TOOLS_PER_TURN tools: more with tools: true, or more names, is 400 naming the count; nothing is stored', async (t) => {
  const { app, fake } = await toolsSetup(t, { MAX_TOOLS_PER_TURN: '4' })
  const all = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: true }), app)
  assert.equal(all.status, 400)
  assert.match((await json(all)).detail, /8 tools.*MAX_TOOLS_PER_TURN \(4\)/)
  const named = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: ['calc__add', 'calc__search', 'calc__slow', 'calc__fail', 'calc__big', 'calc__chart', 'calc__steps', 'calc__ask'] }), app)
  assert.equal(named.status, 400)
  assert.match((await json(named)).detail, /MAX_TOOLS_PER_TURN/)
  assert.equal(fake.chatRequests().length, 0)
  assert.equal((await json(await sessionsList.fetch(toRequest('GET /v1/sessions'), app))).sessions.length, 0)
  const few = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: ['calc__add', 'calc__search'], stream: false }), app)
  assert.equal(few.status, 200)
})

test('a secret of MCP_CONFIG never reaches a result, an error, the store or the log: alone, without its scheme, or base64-encoded', async (t) => {
  const secret = 'sk-live-7b1f2e9c4d5a6b8e'
  const careless = rawStdioServer(['lookup', 'fail'], { default: 'auto', env: { TOOL_NAMES: JSON.stringify(['lookup', 'fail']), LEAK: `Bearer ${secret}` } })
  const { app, log, fake } = await toolsSetup(t, {}, { careless })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: '[[call careless__lookup {}]] [[call careless__fail {}]]', model: 'qwen3:8b', tools: true }), app))
  const results = ofType(events, 'tool_result').sort((a, b) => b.name.localeCompare(a.name))
  assert.deepEqual(results.map((result) => [result.name, result.ok]), [['careless__lookup', true], ['careless__fail', false]])
  assert.match(results[0].content, /^lookup ran with \{\} \[\*\*\* /, 'the rest of the answer is kept')
  const forms = [secret, Buffer.from(secret).toString('base64').slice(0, 24), Buffer.from(`x${secret}`).toString('base64').slice(4, 28), Buffer.from(`xy${secret}`).toString('base64url').slice(4, 28)]
  const everywhere = {
    events: JSON.stringify(events),
    prompt: JSON.stringify(fake.chatRequests().map((request) => request.body.messages)),
    stored: JSON.stringify(await storedRows(app, 'SELECT content FROM messages')),
    log: JSON.stringify(log.entries),
  }
  assert.ok(log.entries.some((entry) => entry.message === 'mcp server stderr' && String(entry.fields.line).startsWith('starting with')))
  for (const [where, text] of Object.entries(everywhere)) {
    for (const form of forms) assert.ok(!text.includes(form), `${form} in the ${where}`)
  }
})

test('a tool schema\'s pattern that backtracks catastrophically is checked off the event loop within a time limit: the check fails, the model is told, the tool is not run', async (t) => {
  const schema = { type: 'object', properties: { word: { type: 'string', pattern: '^(a+)+$' } }, required: ['word'] }
  const odd = rawStdioServer(['match'], { default: 'auto', env: { TOOL_NAMES: JSON.stringify(['match']), TOOL_SCHEMAS: JSON.stringify({ match: schema }) } })
  const { app } = await toolsSetup(t, {}, { odd })
  const evil = `${'a'.repeat(30)}!`
  const { events } = await readSse(await chat.fetch(chatRequest({ message: `[[call odd__match {"word":"${evil}"}]]`, model: 'qwen3:8b', tools: true }), app))
  const [result] = ofType(events, 'tool_result')
  assert.equal(result.ok, false)
  assert.match(result.content, /^Invalid arguments for odd__match: the check against its schema took longer than 250 ms/)
  // The thread that ran it is gone; the next check gets a new one, and a fine value passes.
  const fine = (await readSse(await chat.fetch(chatRequest({ message: '[[call odd__match {"word":"aaaa"}]] [[call odd__match {"word":"ab"}]]', model: 'qwen3:8b', tools: true }), app))).events
  const results = ofType(fine, 'tool_result').sort((a, b) => Number(b.ok) - Number(a.ok))
  assert.deepEqual(results.map((entry) => entry.ok), [true, false])
  assert.equal(results[0].content, 'match ran with {"word":"aaaa"}')
  assert.match(results[1].content, /does not match pattern/)
})
