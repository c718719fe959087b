/**
 * Search over 1,000,000 messages (10,000 sessions of 100, the texts of test/bench/seed.ts, written
 * session by session as chats are) through the service: a word in every message with a rare one,
 * three words in many, a word in none, and words in most messages. SQLite's figures are also in
 * `npm run bench` (section "Search", on its seeded file); this adds PostgreSQL's.
 *
 * Run alone: `node --import tsx test/bench/search-at-scale.ts [--store postgres|sqlite] [--sessions 10000]`
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { postgresCluster } from '../support/postgres.ts'
import { percentile } from './load.ts'
import { startServer, stopped } from './processes.ts'
import { seedDatabase } from './seed.ts'

const SAMPLES = 300

/** What seed.ts writes to a SQLite file, written to PostgreSQL by the server itself. */
async function seedPostgres(url: string, sessions: number): Promise<void> {
  const sql = postgres(url, { onnotice: () => {} })
  await sql`INSERT INTO sessions (id, title, created_at, updated_at, owner_id)
    SELECT 's' || i, 'Session ' || i, start, start, 'local'
    FROM generate_series(0, ${sessions - 1}::int) i, LATERAL (SELECT timestamptz '2025-01-01' + ((i * 7919) % ${sessions}::int) * interval '1 minute' AS start) t`
  await sql`INSERT INTO messages (id, session_id, role, content, model, tokens_used, status, created_at)
    SELECT 'm' || i || '-' || j, 's' || i, CASE WHEN j % 2 = 0 THEN 'user' ELSE 'assistant' END,
      CASE WHEN j % 2 = 0 THEN 'Question ' || j || ' of session ' || i || ': how does this work?'
        ELSE repeat('An answer of a few sentences to question ' || (j - 1) || '. ', 4) END,
      CASE WHEN j % 2 = 1 THEN 'llama3.2' END, CASE WHEN j % 2 = 1 THEN 120 END, 'complete',
      timestamptz '2025-01-01' + ((i * 7919) % ${sessions}::int) * interval '1 minute' + j * interval '1.5 second'
    FROM generate_series(0, ${sessions - 1}::int) i, generate_series(0, 99) j ORDER BY i, j`
  await sql`VACUUM ANALYZE`
  await sql.end()
}

export async function searchAtScale(store: 'sqlite' | 'postgres', sessions = 10_000): Promise<string[][]> {
  const started = performance.now()
  let env: Record<string, string>
  if (store === 'sqlite') {
    const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-search-')), 'chat.db')
    seedDatabase(path, sessions, 100)
    env = { DB_PATH: path }
  } else {
    env = { DATABASE_URL: await (await postgresCluster()).newDatabase() }
    // Started once to migrate, then seeded.
    await stopped((await startServer({ ...env, OLLAMA_HOST: '127.0.0.1:9' })).child)
    await seedPostgres(env.DATABASE_URL!, sessions)
  }
  console.log(`(${store}: seeded ${sessions * 100} messages in ${((performance.now() - started) / 1000).toFixed(0)} s)`)
  const { url, child } = await startServer({ ...env, OLLAMA_HOST: '127.0.0.1:9' })
  try {
    const timed = async (path: () => string, method = 'GET') => {
      const times: number[] = []
      for (let index = 0; index < SAMPLES + 20; index++) {
        const begun = performance.now()
        const response = await fetch(`${url}${path()}`, { method })
        await response.arrayBuffer()
        if (response.status >= 400) throw new Error(`${path()}: ${response.status}`)
        if (index >= 20) times.push(performance.now() - begun)
      }
      return [percentile(times, 50), percentile(times, 99)]
    }
    const session = () => Math.floor(Math.random() * sessions)
    const rows: Array<[string, number[]]> = [
      ['"session N": a word in every message and a rare one', await timed(() => `/v1/search?q=${encodeURIComponent(`session ${session()}`)}`)],
      ['"answer question N": three words in many messages', await timed(() => `/v1/search?q=${encodeURIComponent(`answer question ${Math.floor(Math.random() * 50) * 2}`)}&limit=20`)],
      ['"how does": words in half of them', await timed(() => '/v1/search?q=how%20does')],
      ['"answer question N" for a question no session has', await timed(() => `/v1/search?q=${encodeURIComponent(`answer question ${1000 + session()}`)}`)],
      ['a word in no message', await timed(() => `/v1/search?q=zebra${session()}`)],
    ]
    const [floor50, floor99] = await timed(() => '/v1/sessions', 'OPTIONS')
    const f = (value: number) => `${value.toFixed(2)} ms`
    return rows.map(([query, [p50, p99]]) => [store, query, f(p50!), f(p99!), f(floor50!), f(floor99!), 'p99 <= 50 ms'])
  } finally {
    await stopped(child)
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { store: { type: 'string', default: 'postgres' }, sessions: { type: 'string', default: '10000' } } })
  execFileSync(process.execPath, ['build.mjs'], { stdio: 'ignore' })
  const rows = await searchAtScale(values.store as 'sqlite' | 'postgres', Number(values.sessions))
  console.log(`Search over ${Number(values.sessions) * 100} messages (${SAMPLES} sequential requests each)`)
  console.log(['store', 'query', 'p50', 'p99', 'baseline p50', 'baseline p99', 'target'].join(' | '))
  for (const row of rows) console.log(row.join(' | '))
  process.exit(0)
}
