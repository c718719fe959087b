/**
 * What tracing costs (docs/tracing.md): the service three ways side by side in one run, tracing off,
 * on with a collector that takes the spans (an OTLP/HTTP receiver in this process), and on with
 * the collector down; each beside the fake Ollama reached directly. CPU per chat start (one-token
 * chats, 100 at a time) and the time to first token at 100 in flight, medians of `--rounds` (3). Run
 * alone: `node --import tsx test/bench/tracing-cost.ts [--quick] [--rounds N]`; `npm run bench` runs it too.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, statSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { cpuMs, directChat, listeningUrl, percentile, serviceChat, wave } from './load.ts'

const ROOT = new URL('../../', import.meta.url).pathname

function started(args: string[], env: Record<string, string>, ready: (line: string) => string | undefined, children: ChildProcess[]): Promise<{ child: ChildProcess; value: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const value = ready(line)
      if (value !== undefined) resolve({ child, value })
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

/** Bytes of a folder's files, its subfolders' included. */
function folderBytes(folder: string): number {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).reduce((sum, file) => {
    const stat = statSync(join(folder, file))
    return sum + (stat.isFile() ? stat.size : 0)
  }, 0)
}

export async function tracingCost(quick = false, rounds = 3): Promise<{ rows: string[][]; sizes: string[][]; summary: Record<string, unknown> }> {
  const children: ChildProcess[] = []
  execFileSync(process.execPath, ['build.mjs'], { cwd: ROOT, stdio: 'ignore' })
  const scratch = mkdtempSync(join(tmpdir(), 'chat-ollama-bench-tracing-'))
  // A collector that takes every export at once, as a healthy one does.
  let received = 0
  const collector = createServer((req, res) => {
    req.on('data', () => {})
    req.on('end', () => {
      received++
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()
    })
  })
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve))
  try {
    const fake = (line: string) => (line.startsWith('{"url"') ? JSON.parse(line).url as string : undefined)
    const oneToken = await started(['--import', 'tsx', 'test/support/fake-ollama.ts', '--delay', '0', '--tokens', '1'], {}, fake, children)
    const slow = await started(['--import', 'tsx', 'test/support/fake-ollama.ts', '--delay', '20', '--tokens', '30'], {}, fake, children)
    const ways: Array<[string, Record<string, string>]> = [
      ['off', {}],
      ['on, collector up', { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}` }],
      ['on, collector down', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }],
    ]
    const chats = quick ? 1000 : 3000
    const rows: string[][] = []
    const summary: Record<string, unknown> = {}
    const measured = new Map<string, Array<{ cpu: number; p50: number; p99: number; completed: number }>>()
    const direct = async () => {
      const ttfts = (await wave(directChat(slow.value), 100, 5)).filter((result) => result.ok).map((result) => result.ttftMs)
      return { p50: percentile(ttfts, 50), p99: percentile(ttfts, 99) }
    }
    await wave(directChat(slow.value), 20, 0)
    // The ways take turns, round after round: a slow moment of the machine falls on each alike; medians reported.
    for (let round = 0; round < rounds; round++) for (const [name, env] of ways) {
      const run = (ollama: string) => started(['--max-semi-space-size=8', '--enable-source-maps', 'dist/server.mjs'], {
        PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT: '0', MAX_CONCURRENT_CHATS: '5000', MAX_CONCURRENT_CHATS_PER_USER: '5000',
        DB_PATH: join(scratch, `${name.replace(/\W+/g, '-')}-${ollama.length}-${children.length}.db`), OLLAMA_HOST: ollama, ...env,
      }, listeningUrl, children)
      // CPU per chat start: one-token chats, 100 at a time.
      const cpuService = await run(oneToken.value)
      const service = { url: cpuService.value }
      await wave(serviceChat(service), 200, 0)
      const before = cpuMs(cpuService.child)
      for (let done = 0; done < chats; done += 100) await wave(serviceChat(service), 100, 0)
      const cpu = (cpuMs(cpuService.child) - before) / chats
      cpuService.child.kill('SIGKILL')
      // Time to first token at 100 in flight, beside Ollama direct measured right before.
      const ttftService = await run(slow.value)
      const ttftUrl = { url: ttftService.value }
      await wave(serviceChat(ttftUrl), 20, 0)
      const baseline = await direct()
      const ttfts = (await wave(serviceChat(ttftUrl), 100, 5)).filter((result) => result.ok).map((result) => result.ttftMs)
      const through = { p50: percentile(ttfts, 50), p99: percentile(ttfts, 99), completed: ttfts.length }
      ttftService.child.kill('SIGKILL')
      measured.set(name, [...measured.get(name) ?? [], { cpu, p50: through.p50 - baseline.p50, p99: through.p99 - baseline.p99, completed: through.completed }])
    }
    const median = (values: number[]) => percentile(values, 50)
    for (const [name, results] of measured) {
      const figures = { cpu_per_chat_ms: median(results.map((each) => each.cpu)), ttft_overhead_p50_ms: median(results.map((each) => each.p50)), ttft_overhead_p99_ms: median(results.map((each) => each.p99)), completed: Math.min(...results.map((each) => each.completed)) }
      rows.push([name, `${figures.cpu_per_chat_ms.toFixed(3)} ms`, `${figures.ttft_overhead_p50_ms.toFixed(2)} / ${figures.ttft_overhead_p99_ms.toFixed(2)} ms`, `${figures.completed}/100`])
      summary[name] = figures
    }
    summary.collector_exports = received
    const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`
    const otel = folderBytes(join(ROOT, 'node_modules/@opentelemetry'))
    const sizes = [
      ['dist/server.mjs (tracing code included, OpenTelemetry not)', kib(statSync(join(ROOT, 'dist/server.mjs')).size)],
      ['node_modules/@opentelemetry (loaded only when tracing is on)', kib(otel)],
    ]
    summary.bundle = { server_bytes: statSync(join(ROOT, 'dist/server.mjs')).size, opentelemetry_bytes: otel }
    return { rows, sizes, summary }
  } finally {
    for (const child of children) child.kill('SIGKILL')
    collector.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--rounds')
  const rounds = at > 0 ? Number(process.argv[at + 1]) : 3
  const { rows, sizes } = await tracingCost(process.argv.includes('--quick'), rounds)
  console.log(`median of ${rounds} rounds`)
  console.log('tracing             CPU per chat start   TTFT overhead p50 / p99 (100 in flight)   completed')
  for (const row of rows) console.log(`${row[0]!.padEnd(20)}${row[1]!.padStart(18)}   ${row[2]!.padStart(38)}   ${row[3]}`)
  for (const [what, size] of sizes) console.log(`${what}: ${size}`)
  process.exit(0)
}
