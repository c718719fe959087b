/**
 * Tracing (docs/tracing.md): the whole server with OpenTelemetry's variables set exports its spans
 * over OTLP/HTTP to a receiver in the test; checked are the spans, their parents and links, their
 * attributes (GenAI conventions for the Ollama call and the tool), the traceparent passed on to
 * Ollama and to an MCP server, and what tracing off and a collector that is down do. On both
 * backends (STORE=postgres runs this file too, with the test of several instances).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { startServer } from '../lib/server.ts'
import { createLogger, silentLogger } from '../lib/observability/log.ts'
import { fakeOllama, json, readSse, sseEvents, STORE, storeEnv, take, testConfig, type Env } from './support/app.ts'
import { pacedChat, rest } from './support/paced-chat.ts'
import { postgresCluster } from './support/postgres.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'
import { startOtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.ts'

const TOKEN = 'tracing-mcp-token'
const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT_SPAN = '00f067aa0ba902b7'

async function tracedServer(t: TestContext, env: Env = {}) {
  const fake = await fakeOllama(t)
  const receiver = await startOtlpReceiver()
  const mcp = await startMcpHttpServer(t, TOKEN)
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-tracing-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, default: 'auto' } } }))
  // The real logger (its lines as written), which adds the trace to each line of traced work.
  const lines: string[] = []
  const log = createLogger({ level: 'info', format: 'json', write: (line) => lines.push(line) })
  const running = await startServer(testConfig({
    OLLAMA_HOST: fake.hostPort, MCP_CONFIG: config, ...(await storeEnv()),
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_SERVICE_NAME: 'chat-test',
    ...env,
  }), { log })
  // The server stops (sending its last spans) before the collector does.
  t.after(async () => {
    await running.shutdown()
    await receiver.close()
  })
  const logged = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${running.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { fake, receiver, mcp, logged, running, post }
}

const named = (spans: ReceivedSpan[], name: string) => spans.filter((span) => span.name === name)
const one = (spans: ReceivedSpan[], name: string) => {
  const found = named(spans, name)
  assert.equal(found.length, 1, `one ${name} span: ${spans.map((span) => span.name).join(', ')}`)
  return found[0]!
}

test('a chat is one trace under the caller\'s traceparent: the request, the context plan, the store writes and the Ollama call (GenAI attributes), its traceparent sent to Ollama; no message text', async (t) => {
  const { fake, receiver, post, logged } = await tracedServer(t)
  const message = 'a secret question about owls'
  const response = await post('/v1/chat', { message, model: 'llama3.2' }, { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` })
  const { events } = await readSse(response)
  assert.equal(events.at(-1)!.data.type, 'done')
  assert.match(response.headers.get('traceresponse') ?? '', new RegExp(`^00-${PARENT_TRACE}-[0-9a-f]{16}-01$`))
  await receiver.waitFor((spans) => named(spans, 'POST /v1/chat').length === 1 && named(spans, 'chat llama3.2').length === 1)
  const spans = receiver.spans.filter((span) => span.traceId === PARENT_TRACE)
  const request = one(spans, 'POST /v1/chat')
  assert.equal(request.parentSpanId, PARENT_SPAN)
  assert.equal(request.kind, 2)
  assert.equal(request.attributes['http.route'], '/v1/chat')
  assert.equal(request.attributes['http.response.status_code'], 200)
  assert.equal(request.resource['service.name'], 'chat-test')
  const chat = one(spans, 'chat llama3.2')
  assert.equal(chat.parentSpanId, request.spanId)
  assert.equal(chat.kind, 3)
  assert.deepEqual([chat.attributes['gen_ai.operation.name'], chat.attributes['gen_ai.provider.name'], chat.attributes['gen_ai.request.model']], ['chat', 'ollama', 'llama3.2'])
  assert.deepEqual(chat.attributes['gen_ai.response.finish_reasons'], ['stop'])
  assert.ok(Number(chat.attributes['gen_ai.usage.input_tokens']) > 0 && Number(chat.attributes['gen_ai.usage.output_tokens']) > 0)
  assert.equal(typeof chat.attributes['chat_ollama.time_to_first_chunk_ms'], 'number')
  assert.deepEqual([chat.attributes['server.address'], chat.attributes['server.port'], chat.attributes['chat_ollama.ollama_host']], [fake.hostPort.split(':')[0], Number(fake.hostPort.split(':')[1]), `http://${fake.hostPort}`])
  const plan = one(spans, 'context.plan')
  assert.equal(plan.parentSpanId, request.spanId)
  assert.equal(plan.attributes['chat_ollama.context.dropped_messages'], 0)
  assert.ok(named(spans, 'store.beginTurn').every((span) => span.parentSpanId === request.spanId && span.attributes['db.operation.name'] === 'beginTurn'))
  assert.equal(named(spans, 'store.beginTurn').length, 1)
  assert.equal(named(spans, 'store.finishReply').length, 1)
  // Ollama was told the chat's span as its parent.
  assert.equal(fake.chatRequests()[0]!.headers.traceparent, `00-${PARENT_TRACE}-${chat.spanId}-01`)
  assert.ok(!JSON.stringify(receiver.spans).includes('owls'), 'no message text without OTEL_CAPTURE_CONTENT')
  // Every log line of the request carries its trace.
  const line = logged().find((entry) => entry.msg === 'request' && entry.path === '/v1/chat')
  assert.equal(line?.trace_id, PARENT_TRACE)
})

test('a traceparent that is not valid is ignored: the request starts a trace of its own', async (t) => {
  const { receiver, post } = await tracedServer(t)
  for (const bad of [`00-${'0'.repeat(32)}-${PARENT_SPAN}-01`, `ff-${PARENT_TRACE}-${PARENT_SPAN}-01`, `00-${PARENT_TRACE}-${PARENT_SPAN}-01-extra`, 'garbage']) {
    const response = await post('/v1/chat', { message: 'hi', model: 'llama3.2', stream: false }, { traceparent: bad })
    assert.equal(response.status, 200)
    assert.doesNotMatch(response.headers.get('traceresponse') ?? '', new RegExp(PARENT_TRACE))
  }
  await receiver.waitFor((spans) => named(spans, 'POST /v1/chat').length === 4)
  assert.ok(named(receiver.spans, 'POST /v1/chat').every((span) => span.parentSpanId === '' && span.traceId !== PARENT_TRACE))
})

test('a tool step: execute_tool spans (GenAI attributes) under the request, the MCP server gets their traceparent; with OTEL_CAPTURE_CONTENT=true the messages and arguments are in the spans', async (t) => {
  const { receiver, post, mcp } = await tracedServer(t, { OTEL_CAPTURE_CONTENT: 'true' })
  const { events } = await readSse(await post('/v1/chat', { message: 'Sum [[call calc__add {"a":2,"b":3}]]', model: 'qwen3:8b', tools: true }))
  assert.equal(events.find((event) => event.data.type === 'tool_result')?.data.content, '5')
  await receiver.waitFor((spans) => named(spans, 'execute_tool calc__add').length === 1 && named(spans, 'chat qwen3:8b').length === 2 && named(spans, 'POST /v1/chat').length === 1)
  const request = one(receiver.spans, 'POST /v1/chat')
  const tool = one(receiver.spans, 'execute_tool calc__add')
  assert.equal(tool.parentSpanId, request.spanId)
  assert.deepEqual([tool.attributes['gen_ai.operation.name'], tool.attributes['gen_ai.tool.name'], tool.attributes['chat_ollama.tool.server'], tool.attributes['chat_ollama.tool.ok']], ['execute_tool', 'calc__add', 'calc', true])
  assert.equal(tool.attributes['gen_ai.tool.call.arguments'], '{"a":2,"b":3}')
  assert.ok(mcp.traceparents.some((header) => header === `00-${tool.traceId}-${tool.spanId}-01`), mcp.traceparents.join(', '))
  assert.ok(named(receiver.spans, 'chat qwen3:8b').every((span) => span.parentSpanId === request.spanId))
  assert.match(String(named(receiver.spans, 'chat qwen3:8b')[0]!.attributes['gen_ai.input.messages']), /Sum \[\[call calc__add/)
})

test('a background response outlives its request: its run is a trace of its own, linked to the request, with its Ollama call under it', async (t) => {
  const { receiver, post, running } = await tracedServer(t)
  const created = await json(await post('/v1/responses', { model: 'llama3.2', input: 'Later, please', background: true }))
  assert.equal(created.status, 'queued')
  await receiver.waitFor((spans) => named(spans, 'response.run').length === 1 && named(spans, 'POST /v1/responses').length === 1 && named(spans, 'chat llama3.2').length === 1)
  const request = one(receiver.spans, 'POST /v1/responses')
  const run = one(receiver.spans, 'response.run')
  assert.equal(run.parentSpanId, '')
  assert.notEqual(run.traceId, request.traceId)
  assert.deepEqual(run.links, [{ traceId: request.traceId, spanId: request.spanId }])
  assert.equal(run.attributes['chat_ollama.response.id'], created.id)
  assert.equal(one(receiver.spans, 'chat llama3.2').parentSpanId, run.spanId)
  const stored = await json(await fetch(`${running.url}/v1/responses/${created.id}`))
  assert.equal(stored.status, 'completed')
})

test('tracing off (no OTLP endpoint): nothing is exported, no traceresponse, no trace ids in the log', async (t) => {
  const { receiver, post, logged } = await tracedServer(t, { OTEL_EXPORTER_OTLP_ENDPOINT: '' })
  const response = await post('/v1/chat', { message: 'hi', model: 'llama3.2', stream: false }, { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('traceresponse'), null)
  assert.ok(!logged().some((entry) => 'trace_id' in entry || entry.msg === 'tracing on'))
  // A second server on the same receiver with tracing on shows the receiver would have heard it.
  const { receiver: heard, post: tracedPost } = await tracedServer(t)
  await tracedPost('/v1/chat', { message: 'hi', model: 'llama3.2', stream: false })
  await heard.waitFor((spans) => named(spans, 'POST /v1/chat').length === 1)
  assert.deepEqual(receiver.contentTypes, [])
})

test('a collector that is down: requests answer as usual; spans that cannot go are counted (lost, and dropped past OTEL_BSP_MAX_QUEUE_SIZE)', async (t) => {
  const { post, running } = await tracedServer(t, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_MAX_QUEUE_SIZE: '2', OTEL_BSP_EXPORT_TIMEOUT: '2000' })
  for (let index = 0; index < 3; index++) {
    const response = await post('/v1/chat', { message: `hi ${index}`, model: 'llama3.2', stream: false })
    assert.equal(response.status, 200)
    assert.match(JSON.stringify(await response.json()), /You said/)
  }
  const counted = async () => {
    const text = await (await fetch(`${running.url}/metrics`)).text()
    const count = (outcome: string) => Number(new RegExp(`chat_ollama_trace_spans_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
    return { lost: count('lost'), dropped: count('dropped') }
  }
  // Each request makes more spans than the queue holds: some are dropped at once; the export of the rest fails.
  assert.ok((await counted()).dropped > 0)
  for (let seen = await counted(); seen.lost === 0; seen = await counted()) await new Promise((resolve) => setTimeout(resolve, 20))
})

test('several instances: following and cancelling a reply that runs on another instance shows in the trace of that request', STORE === 'postgres' ? {} : { skip: 'several instances share a PostgreSQL database (STORE=postgres runs this)' }, async (t) => {
  const fake = await fakeOllama(t)
  const receiver = await startOtlpReceiver()
  const databaseUrl = await (await postgresCluster()).newDatabase()
  const instance = async (id: string) => {
    const running = await startServer(testConfig({
      OLLAMA_HOST: fake.hostPort, DATABASE_URL: databaseUrl, INSTANCE_ID: id, CHECKPOINT_INTERVAL: '10ms',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '20',
    }), { log: silentLogger })
    t.after(() => running.shutdown())
    return running
  }
  const [a, b] = [await instance('a'), await instance('b')]
  t.after(() => receiver.close())
  const { live, sessionId, replyId } = await pacedChat(fake, a.url, {})
  const followed = sseEvents(await fetch(`${b.url}/v1/sessions/${sessionId}/stream`))
  assert.ok((await take(followed, 1)).length === 1)
  const cancelled = await fetch(`${b.url}/v1/sessions/${sessionId}/cancel`, { method: 'POST' })
  assert.equal(cancelled.status, 200)
  await rest(live)
  await rest(followed)
  await receiver.waitFor((spans) => named(spans, 'GET /v1/sessions/:id/stream').length === 1 && named(spans, 'POST /v1/sessions/:id/cancel').length === 1)
  for (const name of ['GET /v1/sessions/:id/stream', 'POST /v1/sessions/:id/cancel']) {
    const span = one(receiver.spans, name)
    assert.deepEqual([span.attributes['chat_ollama.reply.elsewhere'], span.attributes['chat_ollama.reply.id'], span.resource['service.instance.id']], [true, replyId, 'b'], name)
  }
})
