/**
 * Search with one huge message present (what an import before the import bounds could store):
 * GET /v1/search p50/p99 for a word in it and in many others, and the longest the server's event
 * loop was held meanwhile, beside the same server answering OPTIONS. SQLite and PostgreSQL.
 * Run alone: `node --import tsx test/bench/large-message-search.ts [--mb 50] [--store sqlite]`; `npm run bench`
 * runs it too.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { postgresCluster } from '../support/postgres.ts'
import { startServer } from './processes.ts'

const { values } = parseArgs({ options: { mb: { type: 'string', default: '50' }, samples: { type: 'string', default: '300' }, store: { type: 'string', default: 'both' } } })
const BIG_CHARS = Number(values.mb) * 1024 * 1024
const SAMPLES = Number(values.samples)
const MESSAGES = 2000

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

/** The sessions and messages a search runs over, and the huge message, written to the database as a past import left them. */
async function seed(store: 'sqlite' | 'postgres', target: string): Promise<void> {
  const rows: Array<[string, string, string, string, string]> = []
  const sessions: string[] = []
  const at = (index: number) => new Date(Date.UTC(2026, 0, 1) + index * 1000).toISOString()
  for (let index = 0; index < MESSAGES; index++) {
    if (index % 10 === 0) sessions.push(randomUUID())
    rows.push([randomUUID(), sessions.at(-1)!, index % 2 ? 'assistant' : 'user', `message ${index} about the harbour and the weather`, at(index)])
  }
  const big = `${'the harbour at night, lights on the water. '.repeat(Math.ceil(BIG_CHARS / 43)).slice(0, BIG_CHARS)}`
  if (store === 'sqlite') {
    const { DatabaseSync } = await import('node:sqlite')
    const db = new DatabaseSync(target)
    const session = db.prepare("INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (?, 'harbour notes', ?, ?, 'local')")
    for (const [index, id] of sessions.entries()) session.run(id, at(index * 10), at(index * 10))
    const message = db.prepare("INSERT INTO messages (id, session_id, role, content, created_at, status) VALUES (?, ?, ?, ?, ?, 'complete')")
    db.exec('BEGIN')
    for (const row of rows) message.run(...row)
    message.run(randomUUID(), sessions[0]!, 'assistant', big, at(MESSAGES + 1))
    db.exec('COMMIT')
    db.close()
    return
  }
  const sql = postgres(target, { onnotice: () => {} })
  await sql`INSERT INTO sessions ${sql(sessions.map((id, index) => ({ id, title: 'harbour notes', created_at: at(index * 10), updated_at: at(index * 10), owner_id: 'local' })))}`
  await sql`INSERT INTO messages ${sql(rows.map(([id, session_id, role, content, created_at]) => ({ id, session_id, role, content, created_at, status: 'complete' })))}`
  await sql`INSERT INTO messages (id, session_id, role, content, created_at, status) VALUES (${randomUUID()}, ${sessions[0]!}, 'assistant', ${big}, ${at(MESSAGES + 1)}, 'complete')`
  await sql.end()
}

async function measure(store: 'sqlite' | 'postgres'): Promise<string[][]> {
  const env: Record<string, string> = store === 'sqlite'
    ? { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-search-')), 'chat.db') }
    : { DATABASE_URL: await (await postgresCluster()).newDatabase() }
  // Started once to migrate, then seeded, then started again to serve.
  const first = await startServer({ ...env, OLLAMA_HOST: '127.0.0.1:9' })
  first.child.kill('SIGTERM')
  await new Promise((resolve) => first.child.once('exit', resolve))
  await seed(store, (env.DB_PATH ?? env.DATABASE_URL)!)
  const { url, child } = await startServer({ ...env, OLLAMA_HOST: '127.0.0.1:9' })
  try {
    const timed = async (path: string, method = 'GET') => {
      const times: number[] = []
      for (let index = 0; index < SAMPLES + 20; index++) {
        const started = performance.now()
        const response = await fetch(`${url}${path}`, { method })
        await response.arrayBuffer()
        if (response.status >= 400) throw new Error(`${path}: ${response.status}`)
        if (index >= 20) times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      return [percentile(times, 50), percentile(times, 99)] as const
    }
    const [floor50, floor99] = await timed('/v1/sessions', 'OPTIONS')
    const [harbour50, harbour99] = await timed('/v1/search?q=harbour')
    const [night50, night99] = await timed('/v1/search?q=night%20lights')
    // Another user's cheap request while searches run back to back: what a held event loop would delay.
    let searching = true
    const searches = (async () => {
      while (searching) await (await fetch(`${url}/v1/search?q=harbour`)).arrayBuffer()
    })()
    const [beside50, beside99] = await timed('/v1/sessions', 'OPTIONS')
    searching = false
    await searches
    const f = (value: number) => `${value.toFixed(2)} ms`
    return [
      [store, '"harbour": the huge message and 2,000 others', f(harbour50), f(harbour99), f(floor50), f(floor99), 'p99 <= 50 ms'],
      [store, '"night lights": the huge message alone', f(night50), f(night99), f(floor50), f(floor99), 'p99 <= 50 ms'],
      [store, 'OPTIONS while searches run back to back', f(beside50), f(beside99), f(floor50), f(floor99), 'near the baseline'],
    ]
  } finally {
    child.kill('SIGTERM')
  }
}

export async function largeMessageSearch(stores: Array<'sqlite' | 'postgres'> = ['sqlite', 'postgres']): Promise<string[][]> {
  const rows: string[][] = []
  for (const store of stores) rows.push(...(await measure(store)))
  return rows
}

if (import.meta.main) {
  const rows = await largeMessageSearch(values.store === 'both' ? undefined : [values.store as 'sqlite' | 'postgres'])
  console.log(`Search with a ${values.mb} MB message present (${SAMPLES} sequential requests each)`)
  console.log(['store', 'query', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'].join(' | '))
  for (const row of rows) console.log(row.join(' | '))
  process.exit(0)
}
