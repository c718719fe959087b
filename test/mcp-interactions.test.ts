/**
 * MCP servers that do more than answer a call (docs/tools.md): progress of a long call, tools that
 * require tasks, input asked of the user mid-call (elicitation). Against a server made with the official SDK, through the real server's chat. On
 * both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import chat from '../functions/chat.ts'
import toolsList from '../functions/tools-list.ts'
import { MAX_PROGRESS_EVENTS } from '../lib/tools/tool-turn.ts'
import toolInputAnswer from '../functions/tool-input-answer.ts'
import type { AppContext } from '../lib/context.ts'
import { authServer, chatRequest, fakeOllama, json, problemFor, readSse, recordingLogger, sseEvents, STORE, storedRows, testApp, testServer, toRequest, within, type SseEvent } from './support/app.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'

const TOKEN = 'mcp-interactions-token'

async function setup(t: TestContext, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto' } } }))
  const log = recordingLogger()
  const app = await testApp(t, fake, { MCP_CONFIG: config, ...env }, log)
  t.after(() => app.tools.close())
  return { fake, mcp, app, log }
}

/** The whole server with AUTH required and the test MCP server, and two users with their keys. */
async function twoUsers(t: TestContext) {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto' } } }))
  const server = await authServer(t, fake, { MCP_CONFIG: config })
  t.after(() => server.app.tools.close())
  return { server, fake, mcp, alice: await server.userWithKey('alice'), bob: await server.userWithKey('bob') }
}

const ofType = (events: SseEvent[], type: string) => events.filter((event) => event.data.type === type).map((event) => event.data)

test('a long call\'s progress reaches the client as tool_progress events, between its call and its result', async (t) => {
  const { mcp, app } = await setup(t)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Count [[call calc__steps {"steps":3}]]', model: 'qwen3:8b', tools: true }), app))
  assert.equal(mcp.progressAsked, 1, 'the call asked the server for progress (a progressToken)')
  const types = events.map((event) => event.data.type).filter((type) => type !== 'token')
  assert.equal(types[0], 'start')
  assert.equal(types[1], 'tool_call')
  assert.deepEqual(types.slice(-2), ['tool_result', 'done'])
  const progress = ofType(events, 'tool_progress')
  assert.ok(progress.length >= 1 && types.slice(2, -2).every((type) => type === 'tool_progress'))
  const [call] = ofType(events, 'tool_call')
  assert.deepEqual(progress[0], { type: 'tool_progress', session_id: call.session_id, message_id: call.message_id, call_id: call.call_id, name: 'calc__steps', progress: 1, total: 3, message: 'Step 1 of 3' })
  assert.equal(ofType(events, 'tool_result')[0].content, '3 steps done')
})

test('a server that reports progress thousands of times: the client gets a bounded number of events, in order', async (t) => {
  const { app } = await setup(t)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Count [[call calc__steps {"steps":2000}]]', model: 'qwen3:8b', tools: true }), app))
  const progress = ofType(events, 'tool_progress')
  assert.ok(progress.length >= 1 && progress.length <= MAX_PROGRESS_EVENTS, `${progress.length} events`)
  assert.ok(progress.every((event, index) => event.total === 2000 && event.progress <= 2000 && (index === 0 || event.progress > progress[index - 1].progress)))
  assert.equal(ofType(events, 'tool_result')[0].content, '2000 steps done')
})

test('a tool that requires task augmentation is not offered (this client runs no tasks), with one log line; naming it is a 400', async (t) => {
  const { app, log, fake } = await setup(t)
  const listed = await json(await toolsList.fetch(toRequest('GET /v1/tools'), app))
  const names = listed.servers[0].tools.map((tool: any) => tool.name)
  assert.ok(names.includes('calc__steps') && !names.includes('calc__as_task'), names.join(', '))
  assert.ok(log.entries.some((entry) => entry.message === 'mcp tool left out' && entry.fields.tool === '"as_task"' && entry.fields.reason === 'requires tasks'))
  const named = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: ['calc__as_task'] }), app)
  assert.equal(named.status, 400)
  assert.match((await json(named)).detail, /calc__as_task/)
  assert.equal(fake.chatRequests().length, 0)
})

/** Reads a live stream until an event of `type` (returned with the ones before it); bounded in time. */
function until(events: AsyncGenerator<SseEvent | { ping: true }>, type: string, ms = 10_000): Promise<SseEvent[]> {
  return within(ms, `a ${type} event`, (async () => {
    const taken: SseEvent[] = []
    for (;;) {
      const { value, done } = await events.next()
      if (done) throw new Error(`the stream ended before ${type}: ${taken.map((event) => event.data.type).join(', ')}`)
      if ('data' in value) taken.push(value)
      if ('data' in value && value.data.type === type) return taken
    }
  })())
}

const answering = (app: AppContext, sessionId: string, callId: string, body: unknown) =>
  toolInputAnswer.fetch(toRequest(`POST /v1/sessions/${sessionId}/tool-calls/${callId}/input`, body), app)

test('a server that asks its user for input mid-call: input_required with its form, the answer checked against it, defaults filled in, and the call goes on with it', async (t) => {
  const { app, mcp } = await setup(t)
  const response = await chat.fetch(chatRequest({ message: 'Plan [[call calc__ask {"what":"city"}]]', model: 'qwen3:8b', tools: true }), app)
  const events = sseEvents(response)
  const asked = (await until(events, 'input_required')).at(-1)!.data
  assert.equal(asked.message, 'Which city?')
  assert.deepEqual(Object.keys(asked.requested_schema.properties), ['name', 'count', 'colour', 'sure'])
  assert.ok(Date.parse(asked.expires_at) > Date.now())
  const { session_id: sessionId, call_id: callId } = asked

  // Values that do not fit the form are refused, naming each field; nothing is recorded.
  for (const [content, problem] of [
    [{ name: '' }, /name: must have at least 1 characters/],
    [{ name: 'Lisbon', count: 12 }, /count: must be at most 9/],
    [{ name: 'Lisbon', colour: 'blue' }, /colour: must be one of: red, green/],
    [{ name: 'Lisbon', shoe: 42 }, /shoe: the form has no such field/],
    [{ count: 3 }, /name: is required/],
  ] as const) {
    const refused = await answering(app, sessionId, callId, { action: 'accept', content })
    assert.equal(refused.status, 400, JSON.stringify(content))
    assert.match((await json(refused)).detail, problem)
  }
  assert.equal((await answering(app, sessionId, callId, { action: 'decline', content: { name: 'x' } })).status, 400, 'content goes only with accept')
  assert.equal((await answering(app, sessionId, 'call_' + '0'.repeat(32), { action: 'decline' })).status, 404)

  const answered = await answering(app, sessionId, callId, { action: 'accept', content: { name: 'Lisbon', colour: 'green' } })
  assert.equal(answered.status, 200)
  assert.deepEqual(await json(answered), { call_id: callId, input_id: asked.input_id, action: 'accept' })
  assert.equal((await answering(app, sessionId, callId, { action: 'decline' })).status, 404, 'answered: it waits no more')
  const rest = await until(events, 'done')
  assert.deepEqual(rest.filter((event) => event.data.type !== 'token').map((event) => event.data.type), ['input_answered', 'tool_result', 'done'])
  assert.equal(rest[0]!.data.action, 'accept')
  assert.equal(ofType(rest, 'tool_result')[0].content, 'city: {"name":"Lisbon","count":2,"colour":"green","sure":true}')
  assert.deepEqual(mcp.answers, [{ what: 'city', action: 'accept', content: { name: 'Lisbon', count: 2, colour: 'green', sure: true } }])
  assert.deepEqual(await storedRows(app, 'SELECT id FROM tool_inputs'), [], 'nothing is left waiting')
})

test('declined input is declined to the server; nobody answering within TOOL_INPUT_TIMEOUT is a cancel, and TOOL_TIMEOUT does not run meanwhile', async (t) => {
  const { app, mcp } = await setup(t, { TOOL_TIMEOUT: '1s', TOOL_INPUT_TIMEOUT: '1500ms' })
  const first = sseEvents(await chat.fetch(chatRequest({ message: 'Plan [[call calc__ask {"what":"day"}]]', model: 'qwen3:8b', tools: true }), app))
  const asked = (await until(first, 'input_required')).at(-1)!.data
  assert.equal((await answering(app, asked.session_id, asked.call_id, { action: 'decline' })).status, 200)
  assert.equal(ofType(await until(first, 'done'), 'tool_result')[0].content, 'day: decline')

  const second = sseEvents(await chat.fetch(chatRequest({ message: 'Plan [[call calc__ask {"what":"time"}]]', model: 'qwen3:8b', tools: true }), app))
  await until(second, 'input_required')
  const rest = await until(second, 'done')
  assert.equal(ofType(rest, 'input_answered')[0].action, 'cancel')
  const [result] = ofType(rest, 'tool_result')
  assert.deepEqual([result.ok, result.content], [true, 'time: cancel'], 'the call was not cut at TOOL_TIMEOUT while it waited')
  assert.deepEqual(mcp.answers.map((answer) => answer.action), ['decline', 'cancel'])
})

test('two chats whose calls ask at once: each request reaches its own chat, on the call\'s stream or (with one call running) the session\'s', async (t) => {
  const { app, mcp } = await setup(t)
  const streams = await Promise.all(['north', 'south'].map(async (what) => sseEvents(await chat.fetch(chatRequest({ message: `Plan [[call calc__ask {"what":"${what}"}]]`, model: 'qwen3:8b', tools: true }), app))))
  const asked = await Promise.all(streams.map(async (events) => (await until(events, 'input_required')).at(-1)!.data))
  assert.deepEqual(asked.map((request) => request.message), ['Which north?', 'Which south?'])
  assert.notEqual(asked[0].session_id, asked[1].session_id)
  for (const [index, request] of asked.entries()) assert.equal((await answering(app, request.session_id, request.call_id, { action: 'accept', content: { name: `answer ${index}` } })).status, 200)
  const results = await Promise.all(streams.map(async (events) => ofType(await until(events, 'done'), 'tool_result')[0].content))
  assert.deepEqual(results, ['north: {"name":"answer 0","count":2,"sure":true}', 'south: {"name":"answer 1","count":2,"sure":true}'])

  // A server that asks on its session's stream (not the call's): the one call running gets it.
  const alone = sseEvents(await chat.fetch(chatRequest({ message: 'Plan [[call calc__ask {"what":"west","via":"session"}]]', model: 'qwen3:8b', tools: true }), app))
  const request = (await until(alone, 'input_required')).at(-1)!.data
  assert.equal(request.message, 'Which west?')
  await answering(app, request.session_id, request.call_id, { action: 'accept', content: { name: 'Porto' } })
  assert.equal(ofType(await until(alone, 'done'), 'tool_result')[0].content, 'west: {"name":"Porto","count":2,"sure":true}')
  assert.equal(mcp.answers.length, 3)
})

test('another user\'s call answers exactly like a missing one, and their answer changes nothing', async (t) => {
  const { server, mcp, alice, bob } = await twoUsers(t)
  const response = await fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { ...alice.headers, 'content-type': 'application/json' }, body: JSON.stringify({ message: 'Plan [[call calc__ask {"what":"city"}]]', model: 'qwen3:8b', tools: true }) })
  const events = sseEvents(response)
  const asked = (await until(events, 'input_required')).at(-1)!.data
  const answer = (headers: Record<string, string>, callId: string) => fetch(`${server.url}/v1/sessions/${asked.session_id}/tool-calls/${callId}/input`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'accept', content: { name: 'Mallory' } }) })
  const theirs = await answer(bob.headers, asked.call_id)
  const missing = await answer(bob.headers, 'call_' + 'f'.repeat(32))
  assert.equal(theirs.status, 404)
  assert.equal(await problemFor(theirs, asked.call_id), await problemFor(missing, 'call_' + 'f'.repeat(32)))
  assert.equal((await answer(alice.headers, asked.call_id)).status, 200)
  assert.equal(ofType(await until(events, 'done'), 'tool_result')[0].content, 'city: {"name":"Mallory","count":2,"sure":true}')
  assert.deepEqual(mcp.answers.map((answer) => answer.content?.name), ['Mallory'])
})

test('several instances on one database: the answer taken by another instance reaches the call waiting on the first', { skip: STORE === 'postgres' ? false : 'PostgreSQL only: instances share a PostgreSQL database (SQLite has one server)' }, async (t) => {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto' } } }))
  const first = await testServer(t, fake, { MCP_CONFIG: config, INSTANCE_ID: 'first' })
  const second = await testServer(t, fake, { MCP_CONFIG: config, INSTANCE_ID: 'second', DATABASE_URL: first.app.config.databaseUrl! })
  t.after(() => Promise.all([first.app.tools.close(), second.app.tools.close()]))
  const events = sseEvents(await fetch(`${first.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'Plan [[call calc__ask {"what":"city"}]]', model: 'qwen3:8b', tools: true }) }))
  const asked = (await until(events, 'input_required')).at(-1)!.data
  const answered = await fetch(`${second.url}/v1/sessions/${asked.session_id}/tool-calls/${asked.call_id}/input`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'accept', content: { name: 'Braga' } }) })
  assert.equal(answered.status, 200)
  assert.equal(ofType(await until(events, 'done'), 'tool_result')[0].content, 'city: {"name":"Braga","count":2,"sure":true}')
})

test('a result with an image and a resource link: the model reads a note and the address; the image is stored with the call, shown by a tool_images event, and only its owner can fetch it', async (t) => {
  const { server, fake, alice, bob } = await twoUsers(t)
  const response = await fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { ...alice.headers, 'content-type': 'application/json' }, body: JSON.stringify({ message: 'Plot [[call calc__chart {"broken":true}]]', model: 'qwen3:8b', tools: true }) })
  const { events } = await readSse(response)
  const types = events.map((event) => event.data.type).filter((type) => type !== 'token')
  assert.deepEqual(types.slice(-3), ['tool_result', 'tool_images', 'done'], 'the images are told once stored, before the model goes on')
  const result = ofType(events, 'tool_result')[0]
  assert.equal(result.content, [
    'Sales by month',
    '[image 1 (image/png, 96×64): shown to the user, not to you]',
    '[image 2 (image/png): not shown, not a readable image]',
    '[resource sales.csv: https://reports.example.com/sales.csv]',
  ].join('\n'))
  const [shown] = ofType(events, 'tool_images')
  assert.equal(shown.call_id, result.call_id)
  assert.equal(shown.images.length, 1)
  const [image] = shown.images
  assert.deepEqual([image.media_type, image.width, image.height, image.url], ['image/png', 96, 64, `/v1/attachments/${image.id}`])

  // The model was sent the note, not the image.
  const toolMessage = fake.chatRequests().at(-1)!.body.messages.find((message: any) => message.role === 'tool')
  assert.equal(toolMessage.content, result.content)
  assert.equal(toolMessage.images, undefined)

  const mine = await fetch(`${server.url}${image.url}`, { headers: alice.headers })
  assert.equal(mine.status, 200)
  assert.equal(mine.headers.get('content-type'), 'image/png')
  const theirs = await fetch(`${server.url}${image.url}`, { headers: bob.headers })
  const missing = await fetch(`${server.url}/v1/attachments/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { headers: bob.headers })
  assert.equal(theirs.status, 404)
  assert.equal(theirs.status, missing.status)

  // Stored with the tool message: listed with it, as the page shows it after a reload.
  const listed = await json(await fetch(`${server.url}/v1/sessions/${result.session_id}/messages`, { headers: alice.headers }))
  const stored = listed.messages.find((message: any) => message.role === 'tool')
  assert.deepEqual(stored.images.map((each: any) => each.url), [image.url])
})
