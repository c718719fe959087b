/**
 * The `mcp` tool type of the Responses API (docs/tools.md), with the official `openai` SDK as the
 * client: calls run on the configured MCP servers (made with the official MCP SDK), approvals
 * through mcp_approval_request and mcp_approval_response items, and no URL or credential a
 * request names is ever used. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { fakeOllama, storedRows, testServer } from './support/app.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'
import { rawStdioServer } from './support/mcp-raw-stdio-server.ts'

const TOKEN = 'responses-mcp-secret-31415'

async function setup(t: TestContext) {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, tools: { add: 'auto', search: 'auto', delete_all: 'deny', slow: 'ask', chart: 'auto' } } } }))
  const server = await testServer(t, fake, { MCP_CONFIG: config })
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, mcp, server, client }
}

const ofType = (response: { output: Array<{ type: string }> }, type: string) => response.output.filter((item) => item.type === type) as any[]

test('require_approval "never": the server runs the call and answers; mcp_list_tools and mcp_call in the output, streamed too', async (t) => {
  const { fake, mcp, client } = await setup(t)
  const tools = [{ type: 'mcp' as const, server_label: 'calc', require_approval: 'never' as const, allowed_tools: ['add', 'search'] }]
  const response = await client.responses.create({ model: 'qwen3:8b', input: 'Sum [[call calc__add {"a":20,"b":22}]]', tools })
  assert.equal(response.status, 'completed')
  // In the order it happened: the text before the call and the answer after it are messages of their own.
  assert.deepEqual(response.output.map((item) => item.type), ['mcp_list_tools', 'message', 'mcp_call', 'message'])
  assert.equal(response.output_text, 'Let me check.The tools said: 42')
  const [listing] = ofType(response, 'mcp_list_tools')
  assert.deepEqual([listing.server_label, listing.tools.map((tool: any) => tool.name)], ['calc', ['add', 'search']])
  const [call] = ofType(response, 'mcp_call')
  assert.deepEqual([call.server_label, call.name, JSON.parse(call.arguments), call.output, call.error], ['calc', 'add', { a: 20, b: 22 }, '42', null])
  assert.match(call.id, /^mcp_/)
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 20, b: 22 } }])
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['calc__add', 'calc__search'])
  assert.ok(!JSON.stringify(response).includes(TOKEN))
  // As stored, and as a stream: the same items.
  const again = await client.responses.retrieve(response.id)
  assert.deepEqual(again.output.map((item) => item.type), response.output.map((item) => item.type))
  const stream = await client.responses.create({ model: 'qwen3:8b', input: '[[call calc__search {"query":"owls"}]]', tools, stream: true })
  const live: string[] = []
  let completed: any
  for await (const event of stream) {
    const item = 'item' in event ? (event.item as { type: string }).type : ''
    live.push(`${event.sequence_number} ${event.type} ${item}`.trim())
    if (event.type === 'response.completed') completed = event.response
  }
  assert.equal(ofType(completed, 'mcp_call')[0].output, 'search: owls')
  assert.equal(live.filter((line) => line.includes('response.output_item.done')).length, completed.output.length)
  // The call's item goes out when the call has ended, before the answer's text.
  const callDone = live.findIndex((line) => line.endsWith('response.output_item.done mcp_call'))
  const lastDelta = live.findLastIndex((line) => line.includes('response.output_text.delta'))
  assert.ok(callDone > 0 && callDone < lastDelta, live.join('\n'))
  // A replay from the store sends the very same events.
  const replay: string[] = []
  for await (const event of await client.responses.retrieve(completed.id, { stream: true })) {
    const item = 'item' in event ? (event.item as { type: string }).type : ''
    replay.push(`${event.sequence_number} ${event.type} ${item}`.trim())
  }
  assert.deepEqual(replay, live)
  // The chain carries the calls: a follow-up sends them to the model as they happened.
  await client.responses.create({ model: 'qwen3:8b', previous_response_id: response.id, input: 'Thanks' })
  const history = fake.chatRequests().at(-1)!.body.messages.map((message: any) => [message.role, message.content, message.tool_calls?.map((call: any) => call.function.name) ?? null])
  assert.deepEqual(history, [['user', 'Sum [[call calc__add {"a":20,"b":22}]]', null], ['assistant', 'Let me check.', ['calc__add']], ['tool', '42', null], ['assistant', 'The tools said: 42', null], ['user', 'Thanks', null]])
})

test('require_approval "always" (the default): the response ends with an mcp_approval_request; approving it in the next response runs the call, denying does not', async (t) => {
  const { fake, mcp, client } = await setup(t)
  const tools = [{ type: 'mcp' as const, server_label: 'calc' }]
  const asked = await client.responses.create({ model: 'qwen3:8b', input: '[[call calc__add {"a":1,"b":2}]]', tools })
  const [request] = ofType(asked, 'mcp_approval_request')
  assert.deepEqual([request.server_label, request.name, JSON.parse(request.arguments)], ['calc', 'add', { a: 1, b: 2 }])
  assert.equal(mcp.calls.length, 0, 'not run before it is approved')
  assert.equal(fake.chatRequests().length, 1)

  const approved = await client.responses.create({ model: 'qwen3:8b', previous_response_id: asked.id, tools, input: [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }] })
  const [call] = ofType(approved, 'mcp_call')
  assert.deepEqual([call.name, call.output, call.approval_request_id], ['add', '3', request.id])
  assert.equal(approved.output_text, 'The tools said: 3')
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 1, b: 2 } }])
  const items = await client.responses.inputItems.list(approved.id)
  assert.deepEqual(items.data.map((item: any) => [item.type, item.approval_request_id, item.approve]), [['mcp_approval_response', request.id, true]])
  await assert.rejects(client.responses.create({ model: 'qwen3:8b', previous_response_id: approved.id, tools, input: [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && /answered already/.test(error.message))

  // A denial: the tool does not run, and the model is told.
  const second = await client.responses.create({ model: 'qwen3:8b', input: '[[call calc__add {"a":5,"b":5}]]', tools })
  const denied = await client.responses.create({ model: 'qwen3:8b', previous_response_id: second.id, tools, input: [{ type: 'mcp_approval_response', approval_request_id: ofType(second, 'mcp_approval_request')[0].id, approve: false }] })
  assert.match(ofType(denied, 'mcp_call')[0].error, /^Denied: the user did not allow this call/)
  assert.equal(mcp.calls.length, 1)
  // An `ask` tool of MCP_CONFIG asks even when the request says never.
  const strict = await client.responses.create({ model: 'qwen3:8b', input: '[[call calc__slow {}]]', tools: [{ type: 'mcp', server_label: 'calc', require_approval: 'never' }] })
  assert.equal(ofType(strict, 'mcp_approval_request').length, 1)
})

test('the server never connects where a request says: an unknown label, another server_url, credentials in the request and denied tools are refused, nothing run', async (t) => {
  const { fake, mcp, client } = await setup(t)
  const refused = async (tool: Record<string, unknown>, param: RegExp) =>
    assert.rejects(client.responses.create({ model: 'qwen3:8b', input: 'hi', tools: [tool as any] }), (error: any) => error instanceof OpenAI.BadRequestError && param.test(String(error.param)))
  await refused({ type: 'mcp', server_label: 'elsewhere' }, /^tools\[0\]\.server_label$/)
  await refused({ type: 'mcp', server_label: 'calc', server_url: 'http://127.0.0.1:9/mcp' }, /^tools\[0\]\.server_url$/)
  await refused({ type: 'mcp', server_label: 'calc', headers: { authorization: 'Bearer mine' } }, /^tools\[0\]\.headers$/)
  await refused({ type: 'mcp', server_label: 'calc', allowed_tools: ['delete_all'] }, /^tools$/)
  await assert.rejects(client.responses.create({ model: 'qwen3:8b', input: 'hi', tools: [{ type: 'mcp', server_label: 'calc' }, { type: 'function', name: 'f', parameters: {}, strict: false }] }), OpenAI.BadRequestError)
  const same = await client.responses.create({ model: 'qwen3:8b', input: 'hi', tools: [{ type: 'mcp', server_label: 'calc', server_url: mcp.url }] })
  assert.equal(same.status, 'completed', 'its own URL is fine')
  assert.equal(mcp.refused, 0)
  assert.equal(fake.chatRequests().length, 1)
})

test('Ollama failing on the model call after an MCP call: the response fails, its mcp_call stays in it', async (t) => {
  const { fake, mcp, client } = await setup(t)
  fake.next({ toolCalls: [{ name: 'calc__add', arguments: { a: 2, b: 2 } }], tokens: [] }).next({ status: 503 })
  const stream = await client.responses.create({ model: 'qwen3:8b', input: 'add', tools: [{ type: 'mcp', server_label: 'calc', require_approval: 'never' }], stream: true })
  let ended: any
  for await (const event of stream) if (event.type === 'response.failed') ended = event.response
  assert.equal(ended.status, 'failed')
  assert.match(ended.error.message, /Ollama failed/)
  assert.deepEqual(ofType(ended, 'mcp_call').map((call) => call.output), ['4'])
  assert.deepEqual(mcp.calls, [{ name: 'add', arguments: { a: 2, b: 2 } }])
  const stored = await client.responses.retrieve(ended.id)
  assert.deepEqual([stored.status, ofType(stored, 'mcp_call').length], ['failed', 1])
})

test('tools named like Object\'s own properties keep their server policy under require_approval "never": an ask tool still asks, a denied one is not offered', async (t) => {
  const fake = await fakeOllama(t)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { odd: rawStdioServer(['constructor', 'toString', 'valueOf'], { default: 'auto', tools: { constructor: 'ask', toString: 'deny' } }) } }))
  const server = await testServer(t, fake, { MCP_CONFIG: config })
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const tools = [{ type: 'mcp' as const, server_label: 'odd', require_approval: 'never' as const }]
  const response = await client.responses.create({ model: 'qwen3:8b', input: '[[call odd__constructor {}]] [[call odd__valueOf {}]]', tools })
  assert.deepEqual(ofType(response, 'mcp_list_tools')[0].tools.map((tool: any) => tool.name), ['constructor', 'valueOf'])
  assert.deepEqual(ofType(response, 'mcp_approval_request').map((item) => item.name), ['constructor'])
  assert.deepEqual(ofType(response, 'mcp_call').map((item) => [item.name, item.output]), [['valueOf', 'valueOf ran with {}']])
  await assert.rejects(client.responses.create({ model: 'qwen3:8b', input: 'hi', tools: [{ ...tools[0]!, allowed_tools: ['toString'] }] }), (error: any) => error.status === 400 && /toString/.test(error.message))
})

test('a result with an image in a Responses run: nobody sees it there, so the mcp_call output notes it not shown and nothing is stored for it', async (t) => {
  const { fake, server, client } = await setup(t)
  fake.next({ toolCalls: [{ name: 'calc__chart', arguments: {} }], tokens: [] })
  const response = await client.responses.create({ model: 'qwen3:8b', input: 'plot', tools: [{ type: 'mcp', server_label: 'calc', require_approval: 'never' }] })
  assert.deepEqual(ofType(response, 'mcp_call').map((call) => call.output), [
    'Sales by month\n[image 1 (image/png): not shown, nobody sees images here]\n[resource sales.csv: https://reports.example.com/sales.csv]',
  ])
  assert.deepEqual(await storedRows(server.app, 'SELECT id FROM attachments'), [])
})
