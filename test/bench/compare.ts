/**
 * The chat-start figures of this checkout beside those of another git ref, measured in one sitting
 * with the builds alternating, so that a change is judged against what it changes and not against
 * a figure from another day: `npm run bench:compare -- <ref> [--rounds 3]`.
 *
 * The ref is checked out in a temporary worktree (with this checkout's node_modules) and built
 * there. Each round starts each build afresh as the container runs it (the Dockerfile's CMD, a new
 * SQLite file, AUTH off) against the same fake Ollama processes, and measures: time to first token
 * over Ollama direct at 100 in flight (5 ms apart) and for a herd of 100 at once; CPU per chat start;
 * peak RSS after 1,000 streams; relay throughput against direct. Each figure's median over the
 * rounds is printed for both builds, with their ratio.
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { cpuMs, directChat, peakRssMb, percentile, serviceChat, wave, type StreamResult } from './load.ts'
import { startFake, startedProcess, stopped } from './processes.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const SERVICE_FLAGS = (JSON.parse(/^CMD (\[.*\])$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))![1]!) as string[]).slice(1, -1)

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const ttfts = (results: StreamResult[]) => results.filter((result) => result.ok).map((result) => result.ttftMs)

interface Fakes {
  slow: string
  oneToken: string
  fast: string
}

const RELAY_TOKENS = 2000

/** One round of one build: the service started afresh on each load, as the container starts it. */
async function round(root: string, fakes: Fakes): Promise<Record<string, number>> {
  const start = async (ollama: string) => {
    const { child, value } = await startedProcess([...SERVICE_FLAGS, join(root, 'dist/server.mjs')], {
      PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT: '0', MAX_CONCURRENT_CHATS: '100000', MAX_CONCURRENT_CHATS_PER_USER: '100000',
      OLLAMA_HOST: ollama, DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-compare-')), 'chat.db'),
    }, (line) => (line.includes('"listening"') ? JSON.parse(line).url : undefined))
    return { child, url: value }
  }
  const figures: Record<string, number> = {}

  const ttft = await start(fakes.slow)
  await wave(serviceChat(ttft), 20, 0)
  const directInFlight = ttfts(await wave(directChat(fakes.slow), 100, 5))
  const serviceInFlight = ttfts(await wave(serviceChat(ttft), 100, 5))
  figures['TTFT overhead at 100 in flight, p50 (ms)'] = percentile(serviceInFlight, 50) - percentile(directInFlight, 50)
  figures['TTFT overhead at 100 in flight, p99 (ms)'] = percentile(serviceInFlight, 99) - percentile(directInFlight, 99)
  const directHerd = ttfts(await wave(directChat(fakes.slow), 100, 0))
  const serviceHerd = ttfts(await wave(serviceChat(ttft), 100, 0))
  figures['herd of 100 at once, p50 over direct (ms)'] = percentile(serviceHerd, 50) - percentile(directHerd, 50)
  const thousand = await wave(serviceChat(ttft), 1000, 0)
  figures['streams of 1,000 at once that failed'] = thousand.filter((result) => !result.ok).length
  figures['peak RSS after 1,000 streams (MB)'] = peakRssMb(ttft.child)
  await stopped(ttft.child)

  const cpu = await start(fakes.oneToken)
  await wave(serviceChat(cpu), 200, 0)
  const before = cpuMs(cpu.child)
  for (let done = 0; done < 1000; done += 100) await wave(serviceChat(cpu), 100, 0)
  figures['CPU per chat start (ms)'] = (cpuMs(cpu.child) - before) / 1000
  await stopped(cpu.child)

  const relay = await start(fakes.fast)
  const tokensPerSecond = async (run: () => Promise<StreamResult>) => {
    await wave(run, 2, 0)
    const at = performance.now()
    const results = await wave(run, 10, 0)
    return (results.filter((result) => result.ok).length * RELAY_TOKENS) / ((performance.now() - at) / 1000)
  }
  const relayDirect = await tokensPerSecond(directChat(fakes.fast))
  figures['relay vs direct (x)'] = (await tokensPerSecond(serviceChat(relay))) / relayDirect
  await stopped(relay.child)
  return figures
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { rounds: { type: 'string', default: '3' } } })
const ref = positionals[0]
if (!ref) {
  console.error('usage: npm run bench:compare -- <git ref> [--rounds 3]')
  process.exit(2)
}
const rounds = Number(values.rounds)
const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
const label = `${ref} (${git('rev-parse', '--short', ref)})`
const worktree = mkdtempSync(join(tmpdir(), 'chat-ollama-compare-ref-'))
rmSync(worktree, { recursive: true })
git('worktree', 'add', '--detach', worktree, ref)
const fakes: ChildProcess[] = []
try {
  symlinkSync(join(ROOT, 'node_modules'), join(worktree, 'node_modules'))
  for (const root of [ROOT, worktree]) execFileSync(process.execPath, ['build.mjs'], { cwd: root, stdio: 'ignore' })
  const slow = await startFake(['--delay', '20', '--tokens', '30'])
  const oneToken = await startFake(['--tokens', '1'])
  const fast = await startFake(['--tokens', String(RELAY_TOKENS)])
  fakes.push(slow.child, oneToken.child, fast.child)
  const results: Record<'this' | 'ref', Array<Record<string, number>>> = { this: [], ref: [] }
  for (let index = 0; index < rounds; index++) {
    // Alternating, the first build of each round swapped: neither always runs on a warmer machine.
    const order: Array<'this' | 'ref'> = index % 2 ? ['ref', 'this'] : ['this', 'ref']
    for (const build of order) {
      results[build].push(await round(build === 'this' ? ROOT : worktree, { slow: slow.url, oneToken: oneToken.url, fast: fast.url }))
      console.error(`round ${index + 1}/${rounds}: ${build === 'this' ? 'this checkout' : label} measured`)
    }
  }
  const names = Object.keys(results.this[0]!)
  const rows = names.map((name) => {
    const mine = median(results.this.map((figures) => figures[name]!))
    const theirs = median(results.ref.map((figures) => figures[name]!))
    const each = (build: 'this' | 'ref') => results[build].map((figures) => figures[name]!.toFixed(2)).join(' / ')
    return [name, `${mine.toFixed(2)} (${each('this')})`, `${theirs.toFixed(2)} (${each('ref')})`, theirs === 0 ? '-' : `${(mine / theirs).toFixed(2)}x`]
  })
  console.log(`Chat start, this checkout (${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') ? ', with changes' : ''}) beside ${label}: median of ${rounds} alternating rounds (each round in brackets)`)
  console.log(['figure', 'this checkout', label, 'ratio'].join(' | '))
  for (const row of rows) console.log(row.join(' | '))
} finally {
  for (const child of fakes) await stopped(child)
  git('worktree', 'remove', '--force', worktree)
}
process.exit(0)
