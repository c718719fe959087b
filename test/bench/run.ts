/**
 * `npm run bench [-- --quick] [-- --json bench-results/summary.json]`
 *
 * Measures the service as its users feel it, each figure beside a baseline taken in the same run:
 * the fake Ollama reached directly (what the service would cost if it added nothing), a bare
 * node:http server, or the cheapest request the service answers. The fake Ollama and the service
 * each run in their own process; this process only generates load and reads the clock.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { gzipSync } from 'node:zlib'
import { execFileSync, spawnSync } from 'node:child_process'
import postgres from 'postgres'
import { postgresCluster } from '../support/postgres.ts'
import { seedDatabase } from './seed.ts'
import { LOCAL_USER_ID } from '../../lib/store/chat-store.ts'
import { PostgresStore } from '../../lib/store/postgres/store.ts'
import { SqliteStore } from '../../lib/store/sqlite/store.ts'
import type { Store } from '../../lib/store/store.ts'
import { promptTokensOf } from '../support/fake-ollama.ts'
import { agent, cpuMs, directChat, listeningUrl, peakRssMb, percentile, serviceChat, sleep, stream, wave, type StreamResult } from './load.ts'

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } })
const QUICK = flags.quick
const ROOT = new URL('../../', import.meta.url).pathname
const SCRATCH = mkdtempSync(join(tmpdir(), 'chat-ollama-bench-'))
const children: ChildProcess[] = []
const summary: Record<string, unknown> = {
  machine: { cores: cpus().length, cpu: cpus()[0]?.model, node: process.version, quick: QUICK },
}

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

// ---------------------------------------------------------------- helpers

const ms = (value: number) => `${value.toFixed(2)} ms`

function table(title: string, headers: string[], rows: Array<Array<string | number>>): void {
  const cells = [headers, ...rows.map((row) => row.map(String))]
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column]!.length)))
  console.log(`\n${title}`)
  for (const [index, row] of cells.entries()) {
    console.log(`  ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')}`)
    if (index === 0) console.log(`  ${widths.map((width) => '-'.repeat(width)).join('  ')}`)
  }
}

/** Starts `node args` and resolves once it prints a line `ready(line)` accepts. */
function startProcess(args: string[], env: Record<string, string>, ready: (line: string) => string | undefined): Promise<{ child: ChildProcess; value: string; startedMs: number }> {
  const startedAt = performance.now()
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      const value = ready(line)
      if (value !== undefined) resolve({ child, value, startedMs: performance.now() - startedAt })
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

async function startFake(delayMs: number, tokens: number, extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const { child, value } = await startProcess(['--import', 'tsx', 'test/support/fake-ollama.ts', '--delay', String(delayMs), '--tokens', String(tokens), ...extra], {}, (line) =>
    line.startsWith('{"url"') ? JSON.parse(line).url : undefined,
  )
  return { url: value, child }
}

/** The service as the container runs it: the Dockerfile's CMD, whose flags matter for memory. */
const SERVICE_ARGS = (JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]!) as string[]).slice(1)

interface Service {
  url: string
  child: ChildProcess
  /** Every request carries this user's key: AUTH is required, as on a server others reach. */
  headers: Record<string, string>
  /** The PostgreSQL database it runs on, if it does. */
  databaseUrl: string | undefined
}

/** A user `bench` with a key, made with the admin command the image ships; the chats made while AUTH was off become theirs. */
function provisionKey(storeVariables: Record<string, string>): string {
  const admin = (...args: string[]) => spawnSync(process.execPath, ['dist/admin.mjs', ...args], { cwd: ROOT, env: { ...process.env, ...storeVariables }, encoding: 'utf8' })
  // An admin: the largest-input figures read the service's own /metrics.
  admin('user', 'add', 'bench', '--admin')
  admin('adopt-local', 'bench')
  const created = admin('key', 'create', 'bench')
  if (created.status !== 0) throw new Error(`could not make a key: ${created.stderr}`)
  return created.stdout.trim().split('\n').at(-1)!
}

async function startService(env: Record<string, string>): Promise<Service> {
  const dbPath = env.DB_PATH ?? join(SCRATCH, `service-${children.length}.db`)
  const key = provisionKey(env.DATABASE_URL ? { DATABASE_URL: env.DATABASE_URL } : { DB_PATH: dbPath })
  const { child, value } = await startProcess(SERVICE_ARGS, {
    PORT: '0',
    HOST: '127.0.0.1',
    AUTH: 'required',
    // The limiter runs on every request, with room for the bench's load.
    RATE_LIMIT: '1000000/s',
    // The default level: one access-log line per request, as in a real deployment.
    LOG_LEVEL: 'info',
    MAX_CONCURRENT_CHATS: '5000',
    // One key stands for the many users a real deployment has.
    MAX_CONCURRENT_CHATS_PER_USER: '5000',
    ...env,
    DB_PATH: dbPath,
  }, listeningUrl)
  return { url: value, child, headers: { authorization: `Bearer ${key}` }, databaseUrl: env.DATABASE_URL }
}

async function get(url: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ ms: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now()
    const req = httpRequest(url, { method, agent, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ ms: performance.now() - startedAt, status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

// ---------------------------------------------------------------- 1. bundles

execFileSync(process.execPath, ['build.mjs'], { cwd: ROOT, stdio: 'ignore' })
const bundleFiles = [
  'dist/server.mjs',
  ...readdirSync(join(ROOT, 'dist/functions')).filter((file) => file.endsWith('.mjs')).sort().map((file) => `dist/functions/${file}`),
  ...(existsSync(join(ROOT, 'dist/web')) ? readdirSync(join(ROOT, 'dist/web'), { recursive: true, encoding: 'utf8' }).filter((file) => /\.(js|css|html)$/.test(file)).sort().map((file) => `dist/web/${file}`) : []),
]
const bundles = bundleFiles.map((file) => {
  const content = readFileSync(join(ROOT, file))
  return { file, kib: content.length / 1024, gzipKib: gzipSync(content).length / 1024 }
})
table('Bundle sizes', ['bundle', 'size', 'gzip'], bundles.map((bundle) => [bundle.file, `${bundle.kib.toFixed(1)} KiB`, `${bundle.gzipKib.toFixed(1)} KiB`]))
summary.bundles = bundles

// ---------------------------------------------------------------- 2. start-up

const startupRuns = QUICK ? 3 : 7
const startupService: number[] = []
const startupBare: number[] = []
const bareServer = "require('node:http').createServer().listen(0,'127.0.0.1',function(){console.log(JSON.stringify({msg:'listening',url:'x'}))})"
for (let run = 0; run < startupRuns; run++) {
  const service = await startProcess(SERVICE_ARGS, { PORT: '0', HOST: '127.0.0.1', AUTH: 'required', LOG_LEVEL: 'info', DB_PATH: join(SCRATCH, `startup-${run}.db`) }, listeningUrl)
  startupService.push(service.startedMs)
  service.child.kill('SIGKILL')
  const bare = await startProcess(['-e', bareServer], {}, listeningUrl)
  startupBare.push(bare.startedMs)
  bare.child.kill('SIGKILL')
}
const startup = { service_ms: percentile(startupService, 50), bare_node_http_ms: percentile(startupBare, 50) }
table(`Start-up to a listening socket (median of ${startupRuns}, new database each time)`, ['', 'service', 'bare node:http', 'target'], [
  ['spawn -> listening', ms(startup.service_ms), ms(startup.bare_node_http_ms), '<= 300 ms'],
])
summary.startup = startup

// ---------------------------------------------------------------- 3. time to first token

const slowFake = (await startFake(20, 30)).url
const ttftService = await startService({ OLLAMA_HOST: slowFake })
const ttftRows: Array<Array<string | number>> = []
const ttftSummary: Record<string, unknown> = {}
const scenarios = [
  { name: '1 stream at a time', count: QUICK ? 20 : 40, spacingMs: -1 },
  { name: '100 in flight, 5 ms apart', count: 100, spacingMs: 5 },
  { name: '100 at once (a herd)', count: 100, spacingMs: 0 },
  { name: '1,000 at once', count: 1000, spacingMs: 0 },
]
// Warm both paths (connections, JIT) before measuring.
await wave(directChat(slowFake), 20, 0)
await wave(serviceChat(ttftService), 20, 0)
for (const scenario of scenarios) {
  const measure = async (run: () => Promise<StreamResult>) => {
    if (scenario.spacingMs >= 0) return wave(run, scenario.count, scenario.spacingMs)
    const results: StreamResult[] = []
    for (let index = 0; index < scenario.count; index++) results.push(await run())
    return results
  }
  const direct = await measure(directChat(slowFake))
  const through = await measure(serviceChat(ttftService))
  const stats = (results: StreamResult[]) => {
    const ttfts = results.filter((result) => result.ok).map((result) => result.ttftMs)
    return { p50: percentile(ttfts, 50), p99: percentile(ttfts, 99), completed: ttfts.length, errors: results.length - ttfts.length }
  }
  const d = stats(direct)
  const s = stats(through)
  ttftRows.push([scenario.name, ms(d.p50), ms(s.p50), ms(s.p50 - d.p50), ms(d.p99), ms(s.p99), ms(s.p99 - d.p99), `${s.completed}/${scenario.count}`, s.errors])
  ttftSummary[scenario.name] = { direct: d, service: s, overhead_p50_ms: s.p50 - d.p50, overhead_p99_ms: s.p99 - d.p99 }
}
const rssAfterTtft = peakRssMb(ttftService.child)
table('Time to first token: the fake Ollama directly vs through the service (30 tokens at 20 ms per stream)', [
  'scenario', 'direct p50', 'service p50', 'overhead', 'direct p99', 'service p99', 'overhead', 'completed', 'errors',
], ttftRows)
console.log('  targets at 100 in flight: overhead p50 <= 1 ms, p99 <= 5 ms; at 1,000: zero errors')
table('Service memory', ['', 'peak RSS', 'target'], [['after the 1,000-stream wave', `${rssAfterTtft.toFixed(1)} MB`, '<= 256 MB']])
summary.ttft = ttftSummary
summary.peak_rss_mb = rssAfterTtft

// ---------------------------------------------------------------- 4. relay throughput

const tokensPerStream = QUICK ? 2000 : 5000
const concurrentStreams = 10
const fastFake = (await startFake(0, tokensPerStream)).url
const relayService = await startService({ OLLAMA_HOST: fastFake })
const relay = async (run: () => Promise<StreamResult>) => {
  await wave(run, 2, 0)
  const startedAt = performance.now()
  const results = await wave(run, concurrentStreams, 0)
  const seconds = (performance.now() - startedAt) / 1000
  return { tokensPerSecond: (results.filter((result) => result.ok).length * tokensPerStream) / seconds, errors: results.filter((result) => !result.ok).length }
}
const relayDirect = await relay(directChat(fastFake))
const relayThrough = await relay(serviceChat(relayService))
table(`Relay throughput, no delay per token (${concurrentStreams} streams x ${tokensPerStream} tokens, every reply stored)`, ['', 'direct', 'service', 'target'], [
  ['tokens/s', Math.round(relayDirect.tokensPerSecond), Math.round(relayThrough.tokensPerSecond), '>= 50,000 through the service'],
  ['errors', relayDirect.errors, relayThrough.errors, '0'],
])
summary.relay = { direct_tokens_per_s: relayDirect.tokensPerSecond, service_tokens_per_s: relayThrough.tokensPerSecond, errors: relayThrough.errors }

// ---------------------------------------------------------------- 4b. CPU per chat start

// Chats of one token, 100 at a time: nearly all of a chat's CPU is its start. The service's CPU
// time per chat beside the fake Ollama's own per chat (what generating the answer costs it).
const oneTokenFake = await startFake(0, 1)
const cpuService = await startService({ OLLAMA_HOST: oneTokenFake.url })
const cpuChats = QUICK ? 1000 : 3000
const fakeChild = oneTokenFake.child
await wave(serviceChat(cpuService), 200, 0)
const cpuBefore = { service: cpuMs(cpuService.child), fake: cpuMs(fakeChild) }
for (let done = 0; done < cpuChats; done += 100) await wave(serviceChat(cpuService), 100, 0)
const cpuPerChat = {
  service_ms: (cpuMs(cpuService.child) - cpuBefore.service) / cpuChats,
  fake_ms: (cpuMs(fakeChild) - cpuBefore.fake) / cpuChats,
}
table(`CPU per chat start (${cpuChats} one-token chats, 100 at a time, process CPU time / chats)`, ['', 'service', 'fake Ollama', 'target'], [
  ['CPU per chat', ms(cpuPerChat.service_ms), ms(cpuPerChat.fake_ms), '<= 0.2 ms'],
])
summary.cpu_per_chat = cpuPerChat
cpuService.child.kill('SIGKILL')

// ---------------------------------------------------------------- 5. list endpoints on a large database

const seedSessions = QUICK ? 1000 : 10_000
const seedMessages = 100
mkdirSync(join(ROOT, 'bench-results'), { recursive: true })
const seededPath = join(ROOT, 'bench-results', `seeded-${seedSessions}x${seedMessages}.db`)
let sessionIds: string[]
if (existsSync(seededPath)) {
  console.log(`\n(reusing ${seededPath}, ${(statSync(seededPath).size / 1024 / 1024).toFixed(0)} MB)`)
  const { DatabaseSync } = await import('node:sqlite')
  const db = new DatabaseSync(seededPath, { readOnly: true })
  sessionIds = db.prepare('SELECT id FROM sessions').all().map((row) => String(row.id))
  db.close()
} else {
  const seeded = seedDatabase(seededPath, seedSessions, seedMessages)
  console.log(`\n(seeded ${seedSessions * seedMessages} messages in ${seedSessions} sessions in ${seeded.seconds.toFixed(1)} s)`)
  sessionIds = seeded.sessionIds
}
const listService = await startService({ OLLAMA_HOST: fastFake, DB_PATH: seededPath })
const samples = QUICK ? 300 : 2000
const pick = () => sessionIds[Math.floor(Math.random() * sessionIds.length)]!
// Cursors from deep in the session list, as a client paging down would hold.
const sessionCursors: string[] = []
{
  let cursor: string | null = null
  for (let page = 0; page < 40 && (page === 0 || cursor); page++) {
    const { body }: { body: string } = await get(`${listService.url}/v1/sessions?limit=200${cursor ? `&cursor=${cursor}` : ''}`, 'GET', listService.headers)
    cursor = JSON.parse(body).next_cursor
    if (cursor) sessionCursors.push(cursor)
  }
}
const timed = async (url: () => string, method = 'GET') => {
  for (let index = 0; index < 50; index++) await get(url(), method, listService.headers)
  const times: number[] = []
  for (let index = 0; index < samples; index++) {
    const { ms: elapsed, status } = await get(url(), method, listService.headers)
    if (status >= 400) throw new Error(`${url()} answered ${status}`)
    times.push(elapsed)
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99) }
}
const floor = await timed(() => `${listService.url}/v1/sessions`, 'OPTIONS')
const firstPage = await timed(() => `${listService.url}/v1/sessions`)
const deepPage = await timed(() => `${listService.url}/v1/sessions?cursor=${sessionCursors[Math.floor(Math.random() * sessionCursors.length)]}`)
const messagesPage = await timed(() => `${listService.url}/v1/sessions/${pick()}/messages`)
const messagesHalf = await timed(() => `${listService.url}/v1/sessions/${pick()}/messages?limit=50`)
table(`List endpoints on ${seedSessions * seedMessages} messages in ${seedSessions} sessions (${samples} sequential requests each)`, ['request', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'], [
  ['GET /v1/sessions (first page, 50)', ms(firstPage.p50), ms(firstPage.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 5 ms'],
  ['GET /v1/sessions?cursor= (deep page)', ms(deepPage.p50), ms(deepPage.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 5 ms'],
  ['GET /v1/sessions/{id}/messages (100)', ms(messagesPage.p50), ms(messagesPage.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 5 ms'],
  ['GET /v1/sessions/{id}/messages?limit=50', ms(messagesHalf.p50), ms(messagesHalf.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 5 ms'],
])
console.log('  baseline: OPTIONS /v1/sessions on the same server (routing and HTTP, no database)')
summary.lists = { baseline_options: floor, sessions_first_page: firstPage, sessions_deep_page: deepPage, messages_100: messagesPage, messages_50: messagesHalf }

// Search over the same messages: a word in every message with a rare one (one session's title and
// messages), a word in half the messages with a rare one, and a word in none.
const sessionNumber = () => Math.floor(Math.random() * seedSessions)
const searchRare = await timed(() => `${listService.url}/v1/search?q=${encodeURIComponent(`session ${sessionNumber()}`)}`)
const searchHalf = await timed(() => `${listService.url}/v1/search?q=${encodeURIComponent(`answer question ${Math.floor(Math.random() * 50) * 2}`)}&limit=20`)
const searchNone = await timed(() => `${listService.url}/v1/search?q=zebra${sessionNumber()}`)
table(`Search (GET /v1/search) over ${seedSessions * seedMessages} messages (${samples} sequential requests each)`, ['query', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'], [
  ['"session N": a common word and a rare one', ms(searchRare.p50), ms(searchRare.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 50 ms'],
  ['"answer question N": in many messages', ms(searchHalf.p50), ms(searchHalf.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 50 ms'],
  ['a word in no message', ms(searchNone.p50), ms(searchNone.p99), ms(floor.p50), ms(floor.p99), 'p99 <= 50 ms'],
])
summary.search = { rare: searchRare, many: searchHalf, none: searchNone }
{
  // The store's side of a checkpoint (test/bench/checkpoint-cost.ts): search indexes no streaming reply.
  const { checkpointCost } = await import('./checkpoint-cost.ts')
  const rows = await checkpointCost()
  table('A checkpoint of a streaming reply (test/bench/checkpoint-cost.ts, the store alone)', ['store', 'checkpoints', 'p50', 'p99'], rows)
  summary.checkpoint_cost = rows
}
{
  // How late checkpoints commit with 100 chats streaming (test/bench/checkpoint-lag.ts), the server's own histogram.
  const { checkpointLag } = await import('./checkpoint-lag.ts')
  const { title, header, rows } = await checkpointLag()
  table(title, header, rows)
  summary.checkpoint_lag = rows
}
{
  // SIGTERM with replies that outlast the grace (test/bench/shutdown-time.ts): exit within SHUTDOWN_GRACE + 2 s.
  const { shutdownTime } = await import('./shutdown-time.ts')
  const { title, header, rows } = await shutdownTime(QUICK ? 2 : 5)
  table(title, header, rows)
  summary.shutdown_time = rows
}
{
  // The same searches on PostgreSQL over as many messages (test/bench/search-at-scale.ts).
  const { searchAtScale } = await import('./search-at-scale.ts')
  const rows = await searchAtScale('postgres', seedSessions)
  table(`Search on PostgreSQL over ${seedSessions * 100} messages (test/bench/search-at-scale.ts)`, ['store', 'query', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'], rows)
  summary.search_postgres = rows
}
{
  // A huge message present (test/bench/large-message-search.ts): search must not grow with it.
  const { largeMessageSearch } = await import('./large-message-search.ts')
  const rows = await largeMessageSearch()
  table('Search with a 50 MB message present (test/bench/large-message-search.ts)', ['store', 'query', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'], rows)
  summary.search_large_message = rows
}
{
  // Documents (test/bench/retrieval.ts): ingestion through the server, and retrieval at scale on both backends.
  const { ingestionRate, retrievalAtScale } = await import('./retrieval.ts')
  const ingestion = [await ingestionRate('sqlite', 200), await ingestionRate('postgres', 200)]
  table('Document ingestion: a PDF uploaded, read, cut and embedded by the fake (test/bench/retrieval.ts)', ['store', 'file', 'upload to completed', 'rate'], ingestion)
  const retrieval = []
  for (const store of ['sqlite', 'postgres'] as const) retrieval.push(...(await retrievalAtScale(store, 10_000)))
  table('Retrieval over one user\'s chunks of 768 dimensions (test/bench/retrieval.ts)', ['store', 'chunks', 'what', 'p50', 'p99', 'target'], retrieval)
  summary.documents = { ingestion, retrieval }
}

// ---------------------------------------------------------------- 6. several Ollama hosts

/** A fake host with one generation slot (OLLAMA_NUM_PARALLEL=1) that says which chats it ran. */
async function startPoolFake(delayMs: number, tokens: number): Promise<{ url: string; chats: string[] }> {
  const chats: string[] = []
  const { child, value } = await startProcess(
    ['--import', 'tsx', 'test/support/fake-ollama.ts', '--delay', String(delayMs), '--tokens', String(tokens), '--parallel', '1', '--log-chats'],
    {},
    (line) => (line.startsWith('{"url"') ? JSON.parse(line).url : undefined),
  )
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{"chat"')) chats.push(JSON.parse(line).chat)
  })
  return { url: value, chats }
}

const poolTokens = 60
const poolDelayMs = 5
const poolStreams = QUICK ? 12 : 24
const poolFakes = await Promise.all([0, 1, 2].map(() => startPoolFake(poolDelayMs, poolTokens)))
const poolRows: Array<Array<string | number>> = []
const poolSummary: Record<string, unknown> = {}
let oneHostRate = 0
for (const hostCount of [1, 2, 3]) {
  const service = await startService({ OLLAMA_HOSTS: poolFakes.slice(0, hostCount).map((fake) => fake.url).join(',') })
  await wave(serviceChat(service), hostCount * 2, 0)
  const startedAt = performance.now()
  const results = await wave(serviceChat(service), poolStreams, 0)
  const rate = (results.filter((result) => result.ok).length * poolTokens) / ((performance.now() - startedAt) / 1000)
  if (hostCount === 1) oneHostRate = rate
  poolRows.push([`${hostCount} host${hostCount > 1 ? 's' : ''}`, Math.round(rate), `${(rate / oneHostRate).toFixed(2)}x`, results.filter((result) => !result.ok).length])
  poolSummary[`hosts_${hostCount}`] = { tokens_per_s: rate, vs_one_host: rate / oneHostRate }
  service.child.kill('SIGKILL')
}
table(`Several Ollama hosts: aggregate tokens/s through the API (${poolStreams} streams at once, ${poolTokens} tokens at ${poolDelayMs} ms, one slot per host)`, ['', 'tokens/s', 'vs 1 host', 'errors'], poolRows)
console.log('  target: >= 2.7x one host with three')

// Conversations of several turns, all at once, over three hosts: which host ran each turn.
const conversations = QUICK ? 9 : 18
const turns = 4
const warmService = await startService({ OLLAMA_HOSTS: poolFakes.map((fake) => fake.url).join(',') })
for (const fake of poolFakes) fake.chats.length = 0
await Promise.all(Array.from({ length: conversations }, async (_, conversation) => {
  const sessionId = crypto.randomUUID()
  for (let turn = 0; turn < turns; turn++) {
    await stream(`${warmService.url}/v1/chat`, JSON.stringify({ message: `c${conversation} t${turn}`, session_id: sessionId }), '"type":"token"', '"type":"done"', warmService.headers)
  }
}))
const hostOfTurn = new Map<string, number>()
poolFakes.forEach((fake, index) => fake.chats.forEach((chat) => hostOfTurn.set(chat, index)))
let laterTurns = 0
let warm = 0
for (let conversation = 0; conversation < conversations; conversation++) {
  for (let turn = 1; turn < turns; turn++) {
    laterTurns++
    if (hostOfTurn.get(`c${conversation} t${turn}`) === hostOfTurn.get(`c${conversation} t${turn - 1}`)) warm++
  }
}
const spread = poolFakes.map((fake) => fake.chats.length)
table(`Warm host: ${conversations} conversations of ${turns} turns at once over 3 hosts`, ['', 'value', 'target'], [
  ['later turns on their conversation\'s host', `${warm}/${laterTurns} (${((100 * warm) / laterTurns).toFixed(1)}%)`, '>= 95%'],
  ['turns per host', spread.join(' / '), 'spread'],
])
summary.pool = { ...poolSummary, warm_share: warm / laterTurns, turns_per_host: spread }

// ---------------------------------------------------------------- 7. the largest input one request may send

// How long the largest requests the limits allow hold the service's event loop: the service's
// own record of its longest event loop delay (nodejs_eventloop_lag_max_seconds, 10 ms timer)
// over a series of them, beside the same record while it serves /health probes only.
{
  const inputService = await startService({ OLLAMA_HOST: oneTokenFake.url })
  const items = Array.from({ length: 1000 }, (_, index) => ({ role: 'user', content: `${index} `.padEnd(1000, 'x') }))
  const send = (path: string, body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${inputService.url}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...inputService.headers } }, (res) => {
        let text = ''
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`${path}: ${res.statusCode} ${text.slice(0, 200)}`))))
      })
      req.on('error', reject)
      req.end(body)
    })
  /** The longest event loop delay the service recorded since the last call (each scrape starts a new record). */
  const longestHoldMs = async () => {
    const metrics = (await get(`${inputService.url}/metrics`, 'GET', inputService.headers)).body
    return Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(metrics)![1]) * 1000
  }
  const rounds = QUICK ? 5 : 20
  const newConversation = async () => {
    const created = await new Promise<string>((resolve) => {
      const req = httpRequest(`${inputService.url}/v1/conversations`, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...inputService.headers } }, (res) => {
        let text = ''
        res.on('data', (chunk) => (text += chunk))
        res.on('end', () => resolve(JSON.parse(text).id))
      })
      req.end('{}')
    })
    return created
  }
  const cases: Array<[string, () => Promise<unknown>]> = [
    ['/health only (baseline)', () => get(`${inputService.url}/health`, 'GET', inputService.headers)],
    // truncation auto: the context budget is planned over the whole input, as a long history would be.
    ['/v1/responses, 1,000 items, 1 MB', () => send('/v1/responses', JSON.stringify({ model: 'llama3.2', input: items, truncation: 'auto' }))],
    ['the same into a new conversation', async () => send('/v1/responses', JSON.stringify({ model: 'llama3.2', input: items, conversation: await newConversation(), truncation: 'auto' }))],
    ['/v1/chat/completions, 1,000 messages, 1 MB', () => send('/v1/chat/completions', JSON.stringify({ model: 'llama3.2', messages: items }))],
    // A context that holds it (about 11,000 tokens as first estimated): the default 8192 is too small.
    ['/v1/chat, one 32,000-character message', () => send('/v1/chat', JSON.stringify({ message: 'y'.repeat(32_000), stream: false, options: { num_ctx: 65_536 } }))],
  ]
  const inputRows: Array<Array<string | number>> = []
  const inputSummary: Record<string, unknown> = {}
  for (const [name, work] of cases) {
    await work()
    const holds: number[] = []
    for (let round = 0; round < rounds; round++) {
      await longestHoldMs()
      await work()
      holds.push(await longestHoldMs())
    }
    inputRows.push([name, rounds, ms(percentile(holds, 50)), ms(Math.max(...holds))])
    inputSummary[name] = { rounds, longest_hold_p50_ms: percentile(holds, 50), longest_hold_max_ms: Math.max(...holds) }
  }
  table('The longest the event loop is held while the largest allowed requests are served (the service\'s own record, 10 ms timer)', ['request', 'rounds', 'p50', 'max'], inputRows)
  summary.largest_input = inputSummary
}

// ---------------------------------------------------------------- 8. PostgreSQL

// The same service on PostgreSQL (a local throwaway cluster, as the tests start it) beside SQLite
// and Ollama direct: time to first token at 100 in flight, CPU per chat start, relay throughput,
// what one round trip to the database costs and how many transactions a chat makes.
{
  const cluster = await postgresCluster()
  const onPostgres = async (ollama: string) => startService({ OLLAMA_HOST: ollama, DATABASE_URL: await cluster.newDatabase() })
  const rows: Array<Array<string | number>> = []
  const pgSummary: Record<string, unknown> = {}

  const ttftSqlite = await startService({ OLLAMA_HOST: slowFake })
  const ttftPostgres = await onPostgres(slowFake)
  await wave(serviceChat(ttftSqlite), 20, 0)
  await wave(serviceChat(ttftPostgres), 20, 0)
  const ttftOf = async (run: () => Promise<StreamResult>) => {
    const ttfts = (await wave(run, 100, 5)).filter((result) => result.ok).map((result) => result.ttftMs)
    return { p50: percentile(ttfts, 50), p99: percentile(ttfts, 99), completed: ttfts.length }
  }
  const direct = await ttftOf(directChat(slowFake))
  const viaSqlite = await ttftOf(serviceChat(ttftSqlite))
  const viaPostgres = await ttftOf(serviceChat(ttftPostgres))
  rows.push(['TTFT overhead at 100 in flight, p50 / p99', `${ms(viaSqlite.p50 - direct.p50)} / ${ms(viaSqlite.p99 - direct.p99)}`, `${ms(viaPostgres.p50 - direct.p50)} / ${ms(viaPostgres.p99 - direct.p99)}`, `${viaPostgres.completed}/100 completed`])
  pgSummary.ttft_100_in_flight = { direct, sqlite: viaSqlite, postgres: viaPostgres }
  ttftSqlite.child.kill('SIGKILL')
  ttftPostgres.child.kill('SIGKILL')

  const cpuOf = async (service: Service) => {
    await wave(serviceChat(service), 200, 0)
    const before = cpuMs(service.child)
    for (let done = 0; done < cpuChats; done += 100) await wave(serviceChat(service), 100, 0)
    return (cpuMs(service.child) - before) / cpuChats
  }
  const cpuSqliteService = await startService({ OLLAMA_HOST: oneTokenFake.url })
  const cpuPostgresService = await onPostgres(oneTokenFake.url)
  const cpuSqlite = await cpuOf(cpuSqliteService)
  const databaseUrl = cpuPostgresService.databaseUrl!
  const probe = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  const commits = async () => Number((await probe`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`)[0]!.xact_commit)
  const commitsBefore = await commits()
  const cpuPostgres = await cpuOf(cpuPostgresService)
  // Each connection reports its counts when idle, within a second or so: read until they settle.
  let counted = await commits()
  for (let read = 0; read < 20; read++) {
    await sleep(1500)
    await probe`SELECT pg_stat_clear_snapshot()`
    const now = await commits()
    if (now === counted) break
    counted = now
  }
  const transactionsPerChat = (counted - commitsBefore) / (cpuChats + 200)
  rows.push(['CPU per chat start (service process)', ms(cpuSqlite), ms(cpuPostgres), `${(cpuPostgres / cpuSqlite).toFixed(2)}x SQLite's; target <= 2x`])
  pgSummary.cpu_per_chat_ms = { sqlite: cpuSqlite, postgres: cpuPostgres }
  cpuSqliteService.child.kill('SIGKILL')
  cpuPostgresService.child.kill('SIGKILL')

  const roundTrips: number[] = []
  for (let index = 0; index < (QUICK ? 300 : 2000); index++) {
    const startedAt = performance.now()
    await probe`SELECT 1`
    roundTrips.push(performance.now() - startedAt)
  }
  await probe.end()
  rows.push(['one round trip (SELECT 1 from postgres.js), p50 / p99', '', `${ms(percentile(roundTrips, 50))} / ${ms(percentile(roundTrips, 99))}`, ''])
  rows.push(['transactions committed per chat (each statement outside a transaction counts as one)', '', transactionsPerChat.toFixed(1), ''])
  pgSummary.round_trip_ms = { p50: percentile(roundTrips, 50), p99: percentile(roundTrips, 99) }
  pgSummary.transactions_per_chat = transactionsPerChat

  const relayPostgresService = await onPostgres(fastFake)
  const relayPostgres = await relay(serviceChat(relayPostgresService))
  rows.push([`relay, ${concurrentStreams} x ${tokensPerStream} tokens, every reply stored (tokens/s)`, Math.round(relayThrough.tokensPerSecond), Math.round(relayPostgres.tokensPerSecond), `${(relayPostgres.tokensPerSecond / relayDirect.tokensPerSecond).toFixed(2)}x direct (${Math.round(relayDirect.tokensPerSecond)}); target >= 0.8x`])
  pgSummary.relay_tokens_per_s = { direct: relayDirect.tokensPerSecond, sqlite: relayThrough.tokensPerSecond, postgres: relayPostgres.tokensPerSecond, errors: relayPostgres.errors }
  relayPostgresService.child.kill('SIGKILL')

  table('PostgreSQL beside SQLite (a local cluster; AUTH required, a key on every request)', ['figure', 'SQLite', 'PostgreSQL', 'note'], rows)
  summary.postgres = pgSummary
}

// ---------------------------------------------------------------- 9. several instances

// Two instances on one PostgreSQL database. A chat runs on one (its owner) while a client follows
// it on the other: the delay from the owner sending an event to the follower receiving it, beside
// the same with the follower on the owner itself; the CPU each chat costs both instances; and the
// database writes per reply, for replies of 20 and 100 tokens that last as long.
{
  const cluster = await postgresCluster()
  const databaseUrl = await cluster.newDatabase()
  const twentyTokens = (await startFake(20, 20)).url
  const hundredTokens = (await startFake(4, 100)).url
  const owner = await startService({ OLLAMA_HOST: twentyTokens, DATABASE_URL: databaseUrl })
  const other = await startService({ OLLAMA_HOST: twentyTokens, DATABASE_URL: databaseUrl })
  const ownerOf100 = await startService({ OLLAMA_HOST: hundredTokens, DATABASE_URL: databaseUrl })

  /** When each event (by id) of an event stream arrived; resolves when the stream ends. */
  const arrivals = (url: string, method: string, headers: Record<string, string>, body: string | undefined, onFirst?: (data: any) => void) =>
    new Promise<Map<string, number>>((resolve) => {
      const times = new Map<string, number>()
      let buffer = ''
      const req = httpRequest(url, { method, agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          const now = performance.now()
          buffer += chunk
          let end: number
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const id = /^id: (.+)$/m.exec(block)?.[1]
            if (!id) continue
            if (times.size === 0) onFirst?.(JSON.parse(/^data: (.+)$/m.exec(block)![1]!))
            times.set(id, now)
          }
        })
        res.on('end', () => resolve(times))
        res.on('error', () => resolve(times))
      })
      req.on('error', () => resolve(times))
      req.end(body)
    })

  /** One chat on `chatOn`, followed on `followOn` from its start: the follower's delay per live event, and the reply's id. */
  const followedChat = async (chatOn: Service, followOn: Service) => {
    let following: Promise<Map<string, number>> | undefined
    let followingSince = Number.POSITIVE_INFINITY
    const ownerTimes = await arrivals(`${chatOn.url}/v1/chat`, 'POST', chatOn.headers, JSON.stringify({ message: 'bench' }), (start) => {
      followingSince = performance.now()
      following = arrivals(`${followOn.url}/v1/sessions/${start.session_id}/stream`, 'GET', followOn.headers, undefined)
    })
    const followerTimes = await following!
    // Only events the owner sent once the follower was attached: the replay before is not live.
    const delays = [...ownerTimes].filter(([, at]) => at > followingSince + 50).map(([id, at]) => followerTimes.get(id)! - at).filter(Number.isFinite)
    return { delays, replyId: [...ownerTimes.keys()][0]!.split(':')[0]! }
  }
  const latencyOf = async (followOn: Service, chats: number) => {
    const delays: number[] = []
    for (let done = 0; done < chats; done += 10) {
      for (const result of await Promise.all(Array.from({ length: 10 }, () => followedChat(owner, followOn)))) delays.push(...result.delays)
    }
    return { p50: percentile(delays, 50), p99: percentile(delays, 99), events: delays.length }
  }
  const latencyChats = QUICK ? 30 : 100
  await latencyOf(other, 10)
  const sameInstance = await latencyOf(owner, latencyChats)
  const crossInstance = await latencyOf(other, latencyChats)

  const cpuOf = async (followOn: Service, chats: number) => {
    const before = { owner: cpuMs(owner.child), other: cpuMs(other.child) }
    for (let done = 0; done < chats; done += 10) await Promise.all(Array.from({ length: 10 }, () => followedChat(owner, followOn)))
    return { owner: (cpuMs(owner.child) - before.owner) / chats, other: (cpuMs(other.child) - before.other) / chats }
  }
  const cpuSame = await cpuOf(owner, latencyChats)
  const cpuCross = await cpuOf(other, latencyChats)

  const probe = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  const batchesPerReply = async (replyIds: string[]) => Number((await probe`SELECT count(*)::int AS n FROM stream_events WHERE stream_id = ANY(${replyIds})`)[0]!.n) / replyIds.length
  const replies20: string[] = []
  const replies100: string[] = []
  for (let index = 0; index < 10; index++) {
    replies20.push((await followedChat(owner, other)).replyId)
    replies100.push((await followedChat(ownerOf100, other)).replyId)
  }
  const writes = { tokens_20: await batchesPerReply(replies20), tokens_100: await batchesPerReply(replies100) }
  await probe.end()

  table(`Several instances: two on one PostgreSQL database (${latencyChats} chats of 20 tokens 20 ms apart, 10 at a time, each followed from its start)`, ['figure', 'follower on the owner', 'follower on the other instance', 'target'], [
    ['owner sends an event -> follower gets it, p50', ms(sameInstance.p50), ms(crossInstance.p50), ''],
    ['owner sends an event -> follower gets it, p99', ms(sameInstance.p99), ms(crossInstance.p99), '<= 250 ms across instances'],
    ['CPU per followed chat, owner', ms(cpuSame.owner), ms(cpuCross.owner), ''],
    ['CPU per followed chat, other instance', ms(cpuSame.other), ms(cpuCross.other), ''],
    ['event batches written per reply (INSERT + NOTIFY each), 20 / 100 tokens in ~400 ms', '', `${writes.tokens_20.toFixed(1)} / ${writes.tokens_100.toFixed(1)}`, 'no more for more tokens'],
  ])
  console.log('  every instance also writes one lease renewal and one sweep per INSTANCE_LEASE / 3 (5 s), whatever the load')
  summary.instances = { follow_latency_ms: { same_instance: sameInstance, cross_instance: crossInstance }, cpu_per_followed_chat_ms: { same_instance: cpuSame, cross_instance: cpuCross }, batches_per_reply: writes }
  for (const service of [owner, other, ownerOf100]) service.child.kill('SIGKILL')
}

// ---------------------------------------------------------------- 10. long conversations

// One 200-turn conversation against a fake Ollama with a KV cache: it evaluates only the prompt
// tokens after the common prefix with its previous prompt, at 0.05 ms a token, before its first
// token. This design (through the service) beside two ways without it, sent straight to Ollama:
// dropping the oldest turn whenever the history outgrows the budget, and sending everything for
// Ollama to truncate.
{
  const turns = 200
  const numCtx = 2048
  const budget = numCtx * 0.75
  const replyText = Array.from({ length: 35 }, (_, index) => `tok${index} `).join('')
  const question = (turn: number) => `Turn ${turn}: ${'what else should I know about this '.repeat(4)}`.slice(0, 140)
  const kvFake = async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/fake-ollama.ts', '--tokens', '35', '--kv-ms-per-token', '0.05'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    const evaluated: number[] = []
    const url = await new Promise<string>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line)
        if (entry.url) resolve(entry.url)
        else evaluated.push(entry.evaluated)
      })
    })
    return { url, evaluated, child }
  }
  const direct = async (keep: (history: Array<{ role: string; content: string }>) => Array<{ role: string; content: string }>, truncate: boolean) => {
    const fake = await kvFake()
    const ttfts: number[] = []
    let history: Array<{ role: string; content: string }> = []
    for (let turn = 1; turn <= turns; turn++) {
      history = keep([...history, { role: 'user', content: question(turn) }])
      const body = JSON.stringify({ model: 'llama3.2', messages: history, stream: true, options: { num_ctx: numCtx }, ...(truncate ? {} : { truncate: false }) })
      ttfts.push((await stream(`${fake.url}/api/chat`, body, '"content":"tok', '"done":true')).ttftMs)
      history.push({ role: 'assistant', content: replyText })
    }
    fake.child.kill('SIGKILL')
    return { ttfts, evaluated: fake.evaluated }
  }
  // Oldest turn (a question and its reply) out, one at a time, until the prompt fits the budget.
  const dropOneTurn = (history: Array<{ role: string; content: string }>) => {
    const kept = [...history]
    while (promptTokensOf(kept) > budget && kept.length > 1) kept.splice(0, 2)
    return kept
  }
  const oneAtATime = await direct(dropOneTurn, false)
  const ollamaTruncates = await direct((history) => history, true)

  const fake = await kvFake()
  const service = await startService({ OLLAMA_HOST: fake.url, DEFAULT_NUM_CTX: String(numCtx) })
  const sessionId = crypto.randomUUID()
  const designTtfts: number[] = []
  for (let turn = 1; turn <= turns; turn++) {
    designTtfts.push((await stream(`${service.url}/v1/chat`, JSON.stringify({ message: question(turn), session_id: sessionId }), '"type":"token"', '"type":"done"', service.headers)).ttftMs)
  }
  const design = { ttfts: designTtfts, evaluated: fake.evaluated }
  service.child.kill('SIGKILL')
  fake.child.kill('SIGKILL')

  const median = (values: number[]) => percentile(values, 50)
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0)
  const rowOf = (name: string, run: { ttfts: number[]; evaluated: number[] }) => {
    const early = median(run.ttfts.slice(0, 20))
    const late = median(run.ttfts.slice(149))
    return [name, Math.round(sum(run.evaluated) / turns), Math.round(median(run.evaluated.slice(149))), ms(early), ms(late), `${(late / early).toFixed(2)}x`]
  }
  const saving = sum(oneAtATime.evaluated) / sum(design.evaluated)
  table(`Long conversations: ${turns} turns of ~80 tokens, num_ctx ${numCtx}, a KV-cache fake Ollama (0.05 ms per evaluated token)`, [
    'strategy', 'evaluated tokens / turn', 'median, turns 150-200', 'TTFT median 1-20', 'TTFT median 150-200', 'late / early',
  ], [
    rowOf('this design (cut in blocks, kept between cuts)', design),
    rowOf('drop the oldest turn whenever over budget', oneAtATime),
    rowOf('send everything, Ollama truncates', ollamaTruncates),
  ])
  console.log(`  targets: >= 4x fewer evaluated tokens than dropping one turn at a time (${saving.toFixed(1)}x); this design's late / early TTFT <= 1.5x`)
  summary.long_conversations = { turns, num_ctx: numCtx, evaluated_per_turn: { design: sum(design.evaluated) / turns, one_turn_at_a_time: sum(oneAtATime.evaluated) / turns, ollama_truncates: sum(ollamaTruncates.evaluated) / turns }, saving_vs_one_at_a_time: saving }
}

// ---------------------------------------------------------------- branches

{
  // What each turn reads first: the history on its active path (a recursive walk up the parents),
  // beside the flat read of every message of the session that it replaced, on both backends.
  const length = QUICK ? 200 : 1000
  const reads = QUICK ? 100 : 300
  const cluster = await postgresCluster()
  const backends: Array<[string, Store]> = [
    ['SQLite', new SqliteStore(join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-branches-')), 'chat.db'))],
    ['PostgreSQL', new PostgresStore(await cluster.newDatabase(), { maxConnections: 2 })],
  ]
  const rows: Array<Array<string | number>> = []
  const branchSummary: Record<string, unknown> = {}
  for (const [name, store] of backends) {
    const session = await store.chats.createSession({ system: 'Be brief.' })
    // A long chat with a regenerated reply every tenth turn: the siblings are in the table, off the path.
    for (let turn = 0; turn < length / 2; turn++) {
      const { reply } = await store.chats.beginTurn({ sessionId: session.id, ownerId: LOCAL_USER_ID, content: `question ${turn} ${'lorem ipsum '.repeat(20)}`, model: 'llama3.2' })
      await store.chats.finishReply(reply.id, { content: `answer ${turn} ${'dolor sit amet '.repeat(30)}`, status: 'complete' })
      if (turn % 10 === 0) {
        const question = (await store.chats.getMessage(reply.id))!.parent_id
        const retry = await store.chats.beginReply(session.id, question, 'llama3.2')
        await store.chats.finishReply(retry.id, { content: `retry ${turn}`, status: 'complete' })
      }
    }
    const timed = async (read: () => Promise<unknown>) => {
      const samples: number[] = []
      for (let index = 0; index < reads; index++) {
        const started = performance.now()
        await read()
        samples.push(performance.now() - started)
      }
      return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
    }
    const path = await timed(() => store.chats.history(session.id))
    const flat = await timed(() => store.chats.listMessages(session.id, 10_000, null, 'asc', 'all'))
    rows.push([name, `${ms(path.p50)} / ${ms(path.p99)}`, `${ms(flat.p50)} / ${ms(flat.p99)}`, (await store.chats.history(session.id)).messages.length])
    branchSummary[name] = { path, every_message: flat }
    await store.close()
  }
  table(`Branches: the history a turn reads, a ${length}-message chat with a regenerated reply every 10 turns (${reads} reads each)`, [
    'store', 'active path (recursive), p50 / p99', 'baseline: every message, flat, p50 / p99', 'messages on the path',
  ], rows)
  summary.branches = branchSummary
}

// ---------------------------------------------------------------- import

{
  // POST /v1/import in this process, so that its event loop is the one measured: how long it is
  // held while a file is read (in a worker) and written (a chunk per transaction), beside the same
  // loop idle for as long.
  const { default: importFunction } = await import('../../functions/import.ts')
  const { createAppContext, openStore } = await import('../../lib/app.ts')
  const { loadConfig } = await import('../../lib/shared/config.ts')
  const { silentLogger } = await import('../../lib/observability/log.ts')
  const { monitorEventLoopDelay } = await import('node:perf_hooks')
  const conversationOf = (id: string, messages: number) => {
    const mapping: Record<string, unknown> = { root: { id: 'root', parent: null, children: [], message: null } }
    let parent = 'root'
    for (let index = 0; index < messages; index++) {
      const nodeId = `${id}-${index}`
      mapping[nodeId] = { id: nodeId, parent, children: [], message: { author: { role: index % 2 ? 'assistant' : 'user' }, create_time: 1_700_000_000 + index, content: { content_type: 'text', parts: [`message ${index} ${'lorem ipsum dolor sit amet '.repeat(20)}`] } } }
      parent = nodeId
    }
    return { id, title: `chat ${id}`, create_time: 1_700_000_000, current_node: parent, mapping }
  }
  const files: Array<[string, string]> = [
    [`one conversation of ${QUICK ? '2,000' : '9,999'} messages`, JSON.stringify([conversationOf('big', QUICK ? 2000 : 9999)])],
    [`${QUICK ? 100 : 600} conversations of 100 messages`, JSON.stringify(Array.from({ length: QUICK ? 100 : 600 }, (_, index) => conversationOf(`c${index}`, 100)))],
  ]
  const cluster = await postgresCluster()
  const rows: Array<Array<string | number>> = []
  const importSummary: Record<string, unknown> = {}
  for (const [store, variables] of [['SQLite', { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-import-')), 'chat.db') }], ['PostgreSQL', { DATABASE_URL: await cluster.newDatabase() }]] as const) {
    const config = loadConfig({ OLLAMA_HOST: '127.0.0.1:9', IMPORT_MAX_BYTES: '64MiB', ...variables })
    const app = createAppContext(config, { database: await openStore(config), log: silentLogger })
    for (const [label, body] of files) {
      const delay = monitorEventLoopDelay({ resolution: 1 })
      delay.enable()
      const started = performance.now()
      const response = await importFunction.fetch(new Request('http://localhost/v1/import', { method: 'POST', headers: { 'content-type': 'application/json' }, body }), app)
      const imported = ((await response.json()) as { imported: unknown[] }).imported.length
      const took = performance.now() - started
      delay.disable()
      const idle = monitorEventLoopDelay({ resolution: 1 })
      idle.enable()
      await new Promise((resolve) => setTimeout(resolve, Math.min(took, 3000)))
      idle.disable()
      const msOf = (histogram: typeof delay, p: number) => histogram.percentile(p) / 1e6
      rows.push([store, label, `${(body.length / 2 ** 20).toFixed(1)} MiB`, `${imported} in ${Math.round(took)} ms`, `${ms(msOf(delay, 50))} / ${ms(msOf(delay, 99))} / ${ms(delay.max / 1e6)}`, `${ms(msOf(idle, 50))} / ${ms(msOf(idle, 99))} / ${ms(idle.max / 1e6)}`])
      importSummary[`${store}: ${label}`] = { imported, ms: took, delay_p99_ms: msOf(delay, 99), delay_max_ms: delay.max / 1e6 }
    }
    await app.database.close()
  }
  table('Import (POST /v1/import in this process): the event loop while a file is read and written', [
    'store', 'file', 'size', 'imported', 'loop delay p50 / p99 / max', 'baseline: idle loop p50 / p99 / max',
  ], rows)
  summary.import = importSummary
}

// ---------------------------------------------------------------- images

{
  // POST /v1/chat with images, in this process so that its event loop is the one measured: the
  // body read and parsed, each image decoded from base64, then typed, scaled and re-encoded by
  // sharp (on libuv's threads), stored and sent; beside the same chat without images.
  const { default: chatFunction } = await import('../../functions/chat.ts')
  const { createAppContext, openStore } = await import('../../lib/app.ts')
  const { loadConfig } = await import('../../lib/shared/config.ts')
  const { silentLogger } = await import('../../lib/observability/log.ts')
  const { largeJpeg, dataUrl } = await import('../support/images.ts')
  const { monitorEventLoopDelay } = await import('node:perf_hooks')
  // Ollama in a process of its own: its parsing of the images is not this loop's.
  const fake = await startFake(0, 2, ['--vision', 'gemma3:4b'])
  // The bodies as bytes only: megabytes of strings on this heap would lengthen its own collections.
  const bodyOf = (images: string[]) => Buffer.from(JSON.stringify({ message: 'What is in this photo?', model: 'gemma3:4b', stream: false, ...(images.length ? { images } : {}) }))
  const cases: Array<[string, Buffer]> = await (async () => {
    const photo = dataUrl(await largeJpeg(3 * 2 ** 20), 'image/jpeg')
    return [['no image (baseline)', bodyOf([])], ['one 3 MiB photo', bodyOf([photo])], ['four 3 MiB photos', bodyOf([photo, photo, photo, photo])]]
  })()
  const rounds = QUICK ? 3 : 10
  const rows: Array<Array<string | number>> = []
  const imageSummary: Record<string, unknown> = {}
  const cluster = await postgresCluster()
  for (const [store, variables] of [['SQLite', { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-images-')), 'chat.db') }], ['PostgreSQL', { DATABASE_URL: await cluster.newDatabase() }]] as const) {
    const config = loadConfig({ OLLAMA_HOST: fake.url, ...variables })
    const app = createAppContext(config, { database: await openStore(config), log: silentLogger })
    for (const [label, bytes] of cases) {
      const times: number[] = []
      const delay = monitorEventLoopDelay({ resolution: 1 })
      delay.enable()
      for (let round = 0; round < rounds; round++) {
        const started = performance.now()
        // In 64 KiB chunks, as node:http hands a body over.
        let offset = 0
        const chunked = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (offset >= bytes.byteLength) return controller.close()
            controller.enqueue(bytes.subarray(offset, (offset += 65_536)))
          },
        })
        const response = await chatFunction.fetch(new Request('http://localhost/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: chunked, duplex: 'half' } as RequestInit), app)
        if (response.status !== 200) throw new Error(`images bench: ${response.status} ${await response.text()}`)
        await response.arrayBuffer()
        times.push(performance.now() - started)
      }
      delay.disable()
      const msOf = (p: number) => delay.percentile(p) / 1e6
      rows.push([store, label, `${(bytes.byteLength / 2 ** 20).toFixed(1)} MiB`, `${ms(percentile(times, 50))} / ${ms(percentile(times, 99))}`, `${ms(msOf(50))} / ${ms(msOf(99))} / ${ms(delay.max / 1e6)}`])
      imageSummary[`${store}: ${label}`] = { ms_p50: percentile(times, 50), delay_p99_ms: msOf(99), delay_max_ms: delay.max / 1e6 }
    }
    await app.database.close()
  }
  fake.child.kill()
  table(`Images (POST /v1/chat in this process, ${rounds} chats each, stream: false): answer time and the event loop`, [
    'store', 'images', 'body', 'answered in p50 / p99', 'loop delay p50 / p99 / max',
  ], rows)
  summary.images = imageSummary
  // Many image chats at once against the built server (test/bench/images-at-once.ts).
  const { imagesAtOnce } = await import('./images-at-once.ts')
  const atOnce = await imagesAtOnce()
  table(atOnce.title, atOnce.header, atOnce.rows)
  summary.images_at_once = atOnce.rows
}

// ---------------------------------------------------------------- tools

{
  // POST /v1/chat with one tool step (docs/tools.md), in this process: the model asks for a call,
  // the MCP server (Streamable HTTP, the official SDK, on loopback) runs it, the step is stored and
  // the model is asked again; beside the same chat without tools, and the MCP call alone.
  const { default: chatFunction } = await import('../../functions/chat.ts')
  const { createAppContext, openStore } = await import('../../lib/app.ts')
  const { loadConfig } = await import('../../lib/shared/config.ts')
  const { silentLogger } = await import('../../lib/observability/log.ts')
  const { startMcpHttpServer } = await import('../support/mcp-http-server.ts')
  const { monitorEventLoopDelay } = await import('node:perf_hooks')
  const cleanups: Array<() => unknown> = []
  const mcp = await startMcpHttpServer({ after: (cleanup: () => unknown) => void cleanups.push(cleanup) } as never, 'bench-token')
  const mcpConfig = join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-mcp-')), 'mcp.json')
  writeFileSync(mcpConfig, JSON.stringify({ mcpServers: { calc: { url: mcp.url, headers: { authorization: 'Bearer bench-token' }, default: 'auto' } } }))
  const fake = await startFake(0, 2)
  const cases: Array<[string, Record<string, unknown>]> = [
    ['no tools (baseline)', { message: 'What is 2+3?', model: 'qwen3:8b', stream: false }],
    ['one tool step', { message: '[[call calc__add {"a":2,"b":3}]]', model: 'qwen3:8b', stream: false, tools: ['calc__add'] }],
  ]
  const rounds = QUICK ? 5 : 30
  const rows: Array<Array<string | number>> = []
  const toolSummary: Record<string, unknown> = {}
  const cluster = await postgresCluster()
  for (const [store, variables] of [['SQLite', { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-tools-')), 'chat.db') }], ['PostgreSQL', { DATABASE_URL: await cluster.newDatabase() }]] as const) {
    const config = loadConfig({ OLLAMA_HOST: fake.url, MCP_CONFIG: mcpConfig, ...variables })
    const app = createAppContext(config, { database: await openStore(config), log: silentLogger })
    for (const [label, body] of cases) {
      const times: number[] = []
      const delay = monitorEventLoopDelay({ resolution: 1 })
      // One untimed round: the MCP connection is made once, then kept.
      for (let round = -1; round < rounds; round++) {
        if (round === 0) delay.enable()
        const started = performance.now()
        const response = await chatFunction.fetch(new Request('http://localhost/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }), app)
        if (response.status !== 200) throw new Error(`tools bench: ${response.status} ${await response.text()}`)
        const { content } = await response.json() as { content: string }
        if (round >= 0) times.push(performance.now() - started)
        // The step really ran: the answer is the model's reading of the tool's result.
        if (body.tools && content !== 'The tools said: 5') throw new Error(`tools bench: no tool step in ${JSON.stringify(content)}`)
      }
      delay.disable()
      const msOf = (p: number) => delay.percentile(p) / 1e6
      rows.push([store, label, `${ms(percentile(times, 50))} / ${ms(percentile(times, 99))}`, `${ms(msOf(50))} / ${ms(msOf(99))} / ${ms(delay.max / 1e6)}`])
      toolSummary[`${store}: ${label}`] = { ms_p50: percentile(times, 50), ms_p99: percentile(times, 99), delay_max_ms: delay.max / 1e6 }
    }
    // The MCP call alone, through the same connection, for what the step adds around it.
    const connection = app.tools.server('calc')!
    const calls: number[] = []
    for (let round = 0; round < rounds; round++) {
      const started = performance.now()
      await connection.callTool('add', { a: 2, b: 3 }, new AbortController().signal, 30_000)
      calls.push(performance.now() - started)
    }
    rows.push([store, 'the MCP call alone', `${ms(percentile(calls, 50))} / ${ms(percentile(calls, 99))}`, ''])
    await app.tools.close()
    await app.database.close()
  }
  fake.child.kill()
  for (const cleanup of cleanups.reverse()) await cleanup()
  table(`Tools (POST /v1/chat in this process, ${rounds} chats each, stream: false; Ollama in another process)`, ['store', 'chat', 'answered in p50 / p99', 'loop delay p50 / p99 / max'], rows)
  summary.tools = toolSummary
}

// ---------------------------------------------------------------- tracing

{
  // Tracing off, on with a collector, on with the collector down (test/bench/tracing-cost.ts), medians of rounds taken in turn.
  const { tracingCost } = await import('./tracing-cost.ts')
  const { rows, sizes, summary: figures } = await tracingCost(QUICK, QUICK ? 1 : 3)
  table('Tracing (test/bench/tracing-cost.ts): CPU per chat start, and TTFT overhead over Ollama direct at 100 in flight', ['tracing', 'CPU per chat', 'TTFT overhead p50 / p99', 'completed'], rows)
  table('Tracing: what it adds to what is shipped', ['', 'size'], sizes)
  summary.tracing = figures
}

// ---------------------------------------------------------------- done

if (flags.json) {
  writeFileSync(flags.json, `${JSON.stringify(summary, null, 2)}\n`)
  console.log(`\nsummary written to ${flags.json}`)
}
console.log(`\nmachine: ${cpus().length} cores, ${cpus()[0]?.model}, Node ${process.version}`)
agent.destroy()
process.exit(0)
