import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import metrics from '../functions/metrics.ts'
import sessionsList from '../functions/sessions-list.ts'
import { authServer, chatRequest, fakeOllama, readSse, testApp, toRequest } from './support/app.ts'
import type { AppContext } from '../lib/context.ts'
import { PROJECT_ROOT } from './support/process.ts'
import { dataUrl, pngFile } from './support/images.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'

const PROMTOOL = process.env.PROMTOOL_PATH ?? '/usr/bin/promtool'
// Skipped, saying why, on a developer's machine without promtool; never in CI, where it fails.
const skip = existsSync(PROMTOOL) || process.env.CI ? false : `no promtool at ${PROMTOOL} (.ci/run installs Debian's prometheus package)`

function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync(PROMTOOL, args, { input, encoding: 'utf8' })
  if (result.error) throw result.error
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

/** The value of one sample in an exposition, 0 when the series is absent. */
function sample(exposition: string, series: string): number {
  const line = exposition.split('\n').find((entry) => entry.startsWith(`${series} `))
  return line ? Number(line.slice(series.length + 1)) : 0
}

async function scrape(app: AppContext, headers: Record<string, string> = {}): Promise<string> {
  const response = await metrics.fetch(toRequest('GET /metrics', undefined, headers), app)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4; charset=utf-8$/)
  return response.text()
}

test('the exposition is valid and lint-clean for promtool, process metrics included', { skip }, async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  await readSse(await chat.fetch(chatRequest({ message: 'hello' }), app))
  await chat.fetch(chatRequest({ message: '' }), app)
  const exposition = await scrape(app)
  const { status, output } = promtool(['check', 'metrics'], exposition)
  // 0: valid and clean; 3 would be lint notes, 1 a parse error.
  assert.equal(status, 0, output)
  assert.equal(output.trim(), '')
  for (const series of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.match(exposition, new RegExp(`^${series} \\d`, 'm'))
  }

  const broken = promtool(['check', 'metrics'], `${exposition}chat_ollama_broken{oops 1\n`)
  assert.ok(broken.status !== 0 && broken.status !== 3, 'promtool does fail on a broken exposition')
})

test('counters move by exactly what happened: N chats of k tokens, problems by kind, 429s', async (t) => {
  const tokens = ['a', 'b', 'c', 'd', 'e']
  const fake = await fakeOllama(t, { scenario: { tokens } })
  const app = await testApp(t, fake, { MAX_CONCURRENT_CHATS: '1' })
  const before = await scrape(app)
  const chats = 4
  for (let index = 0; index < chats; index++) await readSse(await chat.fetch(chatRequest({ message: `m${index}` }), app))
  assert.equal((await chat.fetch(chatRequest({ message: '' }), app)).status, 400)
  assert.equal((await chat.fetch(chatRequest({ message: 'x', model: 'nope' }), app)).status, 404)
  // One slot: a second chat while one is held is 429.
  fake.next({ tokens, paced: true })
  const held = chat.fetch(chatRequest({ message: 'hold' }), app)
  await fake.waitFor(() => app.generations.size === 1 && fake.chatRequests().length === chats + 1)
  assert.equal((await chat.fetch(chatRequest({ message: 'too many' }), app)).status, 429)
  fake.release(10)
  await readSse(await held)
  await sessionsList.fetch(toRequest('GET /v1/sessions'), app)
  const after = await scrape(app)
  const delta = (series: string) => sample(after, series) - sample(before, series)

  assert.equal(delta('chat_ollama_tokens_total{direction="output"}'), (chats + 1) * tokens.length)
  assert.ok(delta('chat_ollama_tokens_total{direction="input"}') > 0)
  assert.equal(delta('chat_ollama_time_to_first_token_seconds_count'), chats + 1)
  assert.equal(delta('chat_ollama_replies_total{status="complete"}'), chats + 1)
  assert.equal(delta('chat_ollama_http_requests_total{function="chat",method="POST",status="200"}'), chats + 1)
  assert.equal(delta('chat_ollama_http_requests_total{function="chat",method="POST",status="400"}'), 1)
  assert.equal(delta('chat_ollama_http_requests_total{function="chat",method="POST",status="404"}'), 1)
  assert.equal(delta('chat_ollama_http_requests_total{function="chat",method="POST",status="429"}'), 1)
  assert.equal(delta('chat_ollama_http_requests_total{function="sessions-list",method="GET",status="200"}'), 1)
  assert.equal(delta('chat_ollama_http_request_duration_seconds_count{function="chat"}'), chats + 4)
  assert.equal(delta('chat_ollama_problems_total{kind="validation"}'), 1)
  assert.equal(delta('chat_ollama_problems_total{kind="model_not_found"}'), 1)
  assert.equal(delta('chat_ollama_problems_total{kind="rate_limit"}'), 1)
  assert.equal(delta('chat_ollama_rate_limited_total{function="chat"}'), 1)
  assert.equal(sample(after, 'chat_ollama_generations_active'), 0)
  assert.equal(sample(after, `chat_ollama_ollama_host_up{host="${fake.url}"}`), 1)
  const ourLabels = after.split('\n').filter((line) => line.startsWith('chat_ollama_')).flatMap((line) => [...line.matchAll(/(\w+)="([^"]*)"/g)])
  assert.deepEqual([...new Set(ourLabels.map(([, name]) => name))].sort(), ['direction', 'function', 'host', 'instance_id', 'kind', 'le', 'method', 'rating', 'status'], 'bounded label names only')
  assert.ok(ourLabels.every(([, , value]) => !/[0-9a-f]{8}-[0-9a-f]{4}-/.test(value!)), 'no session or user ids in label values')
})

test('a checkpoint reports how old the oldest text it stored was: the interval at least, once per checkpoint', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b', 'c'], paced: true } })
  const app = await testApp(t, fake, { CHECKPOINT_INTERVAL: '60ms' })
  const delta = (before: string, after: string, series: string) => sample(after, series) - sample(before, series)
  const before = await scrape(app)
  const answered = chat.fetch(chatRequest({ message: 'go' }), app)
  fake.release(1)
  const stream = readSse(await answered)
  let after = before
  while (delta(before, after, 'chat_ollama_checkpoint_lag_seconds_count') === 0) {
    await new Promise((resolve) => setTimeout(resolve, 5))
    after = await scrape(app)
  }
  assert.equal(delta(before, after, 'chat_ollama_checkpoint_lag_seconds_count'), 1, 'one checkpoint for the one token so far')
  const lag = delta(before, after, 'chat_ollama_checkpoint_lag_seconds_sum')
  // The first checkpoint of a new server waits the whole interval (lib/generation/checkpoint-clock.ts).
  assert.ok(lag >= 0.055 && lag < 5, `the token waited the interval: ${lag} s`)
  fake.release(10)
  assert.equal((await stream).events.at(-1)?.data.type, 'done')
})

test('with AUTH required, /metrics needs an admin key', async (t) => {
  const { url, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const admin = await userWithKey('ops', 'admin')
  const user = await userWithKey('dev')
  assert.equal((await fetch(`${url}/metrics`)).status, 401)
  assert.equal((await fetch(`${url}/metrics`, { headers: user.headers })).status, 403)
  const scraped = await fetch(`${url}/metrics`, { headers: admin.headers })
  assert.equal(scraped.status, 200)
  assert.match(await scraped.text(), /^chat_ollama_http_requests_total\{function="metrics",method="GET",status="403"\} 1$/m)
})

/** The Prometheus configuration docker-compose.yml carries inline (configs: prometheus_config). */
function composeConfig(name: string): string {
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const start = compose.indexOf(`\n  ${name}:\n    content: |\n`)
  assert.ok(start >= 0, `docker-compose.yml has configs.${name}.content`)
  const lines = compose.slice(start).split('\n').slice(3)
  const body = lines.slice(0, lines.findIndex((line) => line !== '' && !line.startsWith('      ')))
  return body.map((line) => line.slice(6)).join('\n')
}

test('the monitoring profile: Prometheus\' config passes promtool, and every dashboard query names a series /metrics has', { skip }, async (t) => {
  const prometheusYml = composeConfig('prometheus_config')
  const { mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-prom-'))
  writeFileSync(join(folder, 'prometheus.yml'), prometheusYml.replaceAll('/etc/prometheus/metrics.key', join(folder, 'key')))
  writeFileSync(join(folder, 'key'), 'cko_example')
  const checked = promtool(['check', 'config', join(folder, 'prometheus.yml')])
  assert.equal(checked.status, 0, checked.output)
  assert.match(prometheusYml, /metrics_path: \/metrics/)
  assert.match(prometheusYml, /credentials_file: \/etc\/prometheus\/metrics.key/)

  const dashboard = JSON.parse(readFileSync(join(PROJECT_ROOT, 'docs/grafana/chat-ollama.json'), 'utf8'))
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  await readSse(await chat.fetch(chatRequest({ message: 'hello' }), app))
  const exposition = await scrape(app)
  // Every family /metrics declares (a counter with no sample yet is declared all the same), with a histogram's series.
  const exposed = new Set(
    [...exposition.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap(([, name, type]) => (type === 'histogram' ? [name!, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!])),
  )
  const panels = dashboard.panels.filter((panel: any) => panel.type !== 'row')
  assert.ok(panels.length >= 6)
  const titles = panels.map((panel: any) => panel.title.toLowerCase()).join(' | ')
  for (const topic of ['requests', 'errors', 'time to first token', 'tokens', 'active', 'hosts up', '429']) assert.ok(titles.includes(topic), `a panel on ${topic}: ${titles}`)
  for (const panel of panels) {
    assert.ok(panel.targets?.length > 0, `${panel.title} has a query`)
    for (const { expr } of panel.targets) {
      const names = [...expr.matchAll(/\b(chat_ollama_\w+|process_\w+|nodejs_\w+)/g)].map((match) => match[1])
      assert.ok(names.length > 0, `${panel.title}: ${expr} names a series`)
      for (const name of names) assert.ok(exposed.has(name), `${panel.title}: ${name} is not in /metrics`)
    }
  }
})

test('images: counted as re-encoded or refused, with their processing time', async (t) => {
  const fake = await fakeOllama(t, { models: ['gemma3:4b'], capabilities: { 'gemma3:4b': ['completion', 'vision'] } })
  const app = await testApp(t, fake)
  const before = await scrape(app)
  const images = [dataUrl(pngFile(20, 20)), dataUrl(pngFile(30, 10))]
  assert.equal((await chat.fetch(chatRequest({ message: 'Look', model: 'gemma3:4b', images, stream: false }), app)).status, 200)
  const html = dataUrl(Buffer.from('<html></html>'))
  assert.equal((await chat.fetch(chatRequest({ message: 'Look', model: 'gemma3:4b', images: [html] }), app)).status, 400)
  const after = await scrape(app)
  const delta = (series: string) => sample(after, series) - sample(before, series)
  assert.equal(delta('chat_ollama_images_total{outcome="reencoded"}'), 2)
  assert.equal(delta('chat_ollama_images_total{outcome="refused"}'), 1)
  assert.equal(delta('chat_ollama_image_processing_seconds_count'), 2)
  assert.ok(sample(after, 'chat_ollama_image_processing_seconds_sum') > 0)
})

test('tool calls are counted by server, tool and outcome, with their duration; the exposition stays valid for promtool', { skip }, async (t) => {
  const fake = await fakeOllama(t)
  const mcp = await startMcpHttpServer(t, 'metrics-token')
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: 'Bearer metrics-token' }, default: 'auto' } } }))
  const app = await testApp(t, fake, { MCP_CONFIG: config })
  t.after(() => app.tools.close())
  fake.next({ toolCalls: [{ name: 'calc__add', arguments: { a: 1, b: 2 } }, { name: 'calc__add', arguments: { a: 1, b: -2 } }, { name: 'calc__fail', arguments: {} }], tokens: [] })
  await readSse(await chat.fetch(chatRequest({ message: 'go', model: 'qwen3:8b', tools: true }), app))
  const exposition = await scrape(app)
  assert.equal(sample(exposition, 'chat_ollama_tool_calls_total{server="calc",tool="add",outcome="ok"}'), 1)
  assert.equal(sample(exposition, 'chat_ollama_tool_calls_total{server="calc",tool="add",outcome="invalid"}'), 1)
  assert.equal(sample(exposition, 'chat_ollama_tool_calls_total{server="calc",tool="fail",outcome="error"}'), 1)
  assert.equal(sample(exposition, 'chat_ollama_tool_call_duration_seconds_count{server="calc"}'), 2, 'the calls that ran')
  const { status, output } = promtool(['check', 'metrics'], exposition)
  assert.equal(status, 0, output)
})

test('reasoning time is observed per model for replies that thought, and only those; the exposition stays valid for promtool', { skip }, async (t) => {
  const fake = await fakeOllama(t, { capabilities: { 'qwen3:8b': ['completion', 'thinking'] } })
  const app = await testApp(t, fake)
  for (const think of [true, false, undefined]) await readSse(await chat.fetch(chatRequest({ message: 'go', model: 'qwen3:8b', think }), app))
  await readSse(await chat.fetch(chatRequest({ message: 'go', model: 'llama3.2' }), app))
  const exposition = await scrape(app)
  assert.equal(sample(exposition, 'chat_ollama_thinking_duration_seconds_count{model="qwen3:8b"}'), 2, 'the two replies that thought')
  assert.equal(exposition.includes('chat_ollama_thinking_duration_seconds_count{model="llama3.2"}'), false)
  const { status, output } = promtool(['check', 'metrics'], exposition)
  assert.equal(status, 0, output)
})
