/**
 * The tool loop (README "Tools"): POST /v1/chat with `tools` runs the model's calls against MCP
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
import sessionCancel from '../functions/session-cancel.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionRegenerate from '../functions/session-regenerate.ts'
import type { AppContext } from '../lib/context.ts'
import { chatRequest, fakeOllama, json, readSse, recordingLogger, rowCounts, sseEvents, take, testApp, toRequest, within, type SseEvent } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { startMcpHttpServer, type McpHttpServer } from './support/mcp-http-server.ts'
import { PROJECT_ROOT } from './support/process.ts'

const TOKEN = 'mcp-loop-secret-2718'

async function toolsSetup(t: TestContext, env: Record<string, string> = {}, servers: Record<string, unknown> = {}) {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(path, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto', tools: { delete_all: 'deny' } }, ...servers } }))
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
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['calc__add', 'calc__search', 'calc__slow', 'calc__fail', 'calc__big'])
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
