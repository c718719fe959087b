/**
 * How late checkpoints are under load: 100 chats streaming at once (400 tokens 20 ms apart, 8 s
 * each) through the built server with CHECKPOINT_INTERVAL=1s, on SQLite and on PostgreSQL. Read
 * from the server's own histogram chat_ollama_checkpoint_lag_seconds (how old the oldest text a
 * checkpoint stored was when it committed). Target (docs/reliability.md): every checkpoint
 * within CHECKPOINT_INTERVAL + 250 ms.
 * Run alone: `node --import tsx test/bench/checkpoint-lag.ts [--streams 100] [--store sqlite]`;
 * `npm run bench` runs it too.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { postgresCluster } from '../support/postgres.ts'
import { startFake, startServer, stopped } from './processes.ts'

const TOKENS = 400
const TOKEN_DELAY_MS = 20
const INTERVAL_S = 1
const SERIES = 'chat_ollama_checkpoint_lag_seconds'

/** The histogram's cumulative buckets, by upper bound. */
function buckets(exposition: string): Array<[number, number]> {
  return [...exposition.matchAll(new RegExp(`^${SERIES}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm'))].map(([, le, count]) => [Number(le), Number(count)])
}

async function measure(store: 'sqlite' | 'postgres', streams: number, fakeUrl: string): Promise<string[]> {
  const env: Record<string, string> = store === 'sqlite'
    ? { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-lag-')), 'chat.db') }
    : { DATABASE_URL: await (await postgresCluster()).newDatabase() }
  const server = await startServer({ ...env, OLLAMA_HOST: fakeUrl, CHECKPOINT_INTERVAL: `${INTERVAL_S}s`, MAX_CONCURRENT_CHATS: String(streams), MAX_CONCURRENT_CHATS_PER_USER: String(streams) })
  try {
    const chats = await Promise.all(Array.from({ length: streams }, async (_, index) => {
      await new Promise((resolve) => setTimeout(resolve, index * 10))
      const response = await fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: `stream ${index}` }) })
      const text = await response.text()
      return response.status === 200 && text.includes('"type":"done"')
    }))
    const histogram = buckets(await (await fetch(`${server.url}/metrics`)).text())
    const count = histogram.at(-1)![1]
    const within = histogram.find(([le]) => le === INTERVAL_S + 0.25)![1]
    const p99 = histogram.find(([, cumulative]) => cumulative >= 0.99 * count)![0]
    const largest = histogram.find(([, cumulative]) => cumulative === count)![0]
    const bound = (le: number) => (Number.isFinite(le) ? `<= ${le} s` : '> 10 s')
    return [store, `${chats.filter(Boolean).length}/${streams}`, String(count), `${((100 * within) / count).toFixed(1)}%`, bound(p99), bound(largest)]
  } finally {
    await stopped(server.child)
  }
}

export async function checkpointLag(stores: Array<'sqlite' | 'postgres'> = ['sqlite', 'postgres'], streams = 100): Promise<{ title: string; header: string[]; rows: string[][] }> {
  const fake = await startFake(['--delay', String(TOKEN_DELAY_MS), '--tokens', String(TOKENS)])
  try {
    const rows: string[][] = []
    for (const store of stores) rows.push(await measure(store, streams, fake.url))
    return {
      title: `Checkpoint lag: ${streams} chats streaming at once (${TOKENS} tokens ${TOKEN_DELAY_MS} ms apart), CHECKPOINT_INTERVAL=${INTERVAL_S}s, the built server; target: all within ${INTERVAL_S + 0.25} s`,
      header: ['store', 'chats done', 'checkpoints', `within ${INTERVAL_S + 0.25} s`, 'p99 (histogram bucket)', 'largest (bucket)'],
      rows,
    }
  } finally {
    await stopped(fake.child)
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { streams: { type: 'string', default: '100' }, store: { type: 'string', default: 'both' } } })
  const { title, header, rows } = await checkpointLag(values.store === 'both' ? undefined : [values.store as 'sqlite' | 'postgres'], Number(values.streams))
  console.log(title)
  console.log(header.join(' | '))
  for (const row of rows) console.log(row.join(' | '))
  process.exit(0)
}
