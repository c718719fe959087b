/**
 * How long SIGTERM takes to exit with replies that outlast SHUTDOWN_GRACE: the built server with
 * 20 chats of its own streaming (a fake Ollama that never finishes them) and, on PostgreSQL, 10
 * clients following another instance's replies. Target (docs/reliability.md): exit within
 * SHUTDOWN_GRACE + 2 s, every reply stored.
 * Run alone: `node --import tsx test/bench/shutdown-time.ts [--rounds 5]`; `npm run bench` runs it too.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import postgres from 'postgres'
import { postgresCluster } from '../support/postgres.ts'
import { startFake, startServer, stopped } from './processes.ts'

const GRACE_S = 1
const OWN_CHATS = 20
const FOLLOWERS = 10

/** A streamed response read until `marker` shows, then left open (read on, and dropped when the server goes). */
async function openUntil(response: Promise<Response>, marker: string): Promise<void> {
  const reader = (await response).body!.getReader()
  const decoder = new TextDecoder()
  let seen = ''
  while (!seen.includes(marker)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`the stream ended before ${marker}`)
    seen += decoder.decode(value, { stream: true })
  }
  void (async () => {
    try {
      while (!(await reader.read()).done) { /* to its end */ }
    } catch { /* the server went */ }
  })()
}

const chatOn = (url: string, sessionId: string) =>
  fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'a long one', session_id: sessionId }) })

async function round(store: 'sqlite' | 'postgres', fakeUrl: string, databaseUrl: string | undefined): Promise<{ seconds: number; code: number | null; streaming: number }> {
  const common = { OLLAMA_HOST: fakeUrl, SHUTDOWN_GRACE: `${GRACE_S}s`, MAX_CONCURRENT_CHATS: '100', MAX_CONCURRENT_CHATS_PER_USER: '100' }
  const env: Record<string, string> = store === 'sqlite' ? { ...common, DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-shutdown-')), 'chat.db') } : { ...common, DATABASE_URL: databaseUrl! }
  const leaving = await startServer({ ...env, INSTANCE_ID: 'leaving' })
  const staying = store === 'postgres' ? await startServer({ ...env, INSTANCE_ID: 'staying' }) : undefined
  try {
    await Promise.all(Array.from({ length: OWN_CHATS }, () => openUntil(chatOn(leaving.url, crypto.randomUUID()), '"type":"token"')))
    if (staying) {
      await Promise.all(Array.from({ length: FOLLOWERS }, async () => {
        const sessionId = crypto.randomUUID()
        await openUntil(chatOn(staying.url, sessionId), '"type":"token"')
        await openUntil(fetch(`${leaving.url}/v1/sessions/${sessionId}/stream`), '"type":"token"')
      }))
    }
    const exited = new Promise<number | null>((resolve) => leaving.child.once('exit', resolve))
    const at = performance.now()
    leaving.child.kill('SIGTERM')
    const code = await exited
    const seconds = (performance.now() - at) / 1000
    let streaming = 0
    if (store === 'postgres') {
      const sql = postgres(databaseUrl!, { max: 1, onnotice: () => {} })
      streaming = (await sql`SELECT count(*)::int AS n FROM messages WHERE status = 'streaming' AND owner_instance = 'leaving'`)[0]!.n
      await sql.end()
    }
    return { seconds, code, streaming }
  } finally {
    await stopped(leaving.child)
    if (staying) await stopped(staying.child)
  }
}

export async function shutdownTime(rounds = 5): Promise<{ title: string; header: string[]; rows: string[][] }> {
  // A token every 200 ms, for far longer than any grace.
  const fake = await startFake(['--delay', '200', '--tokens', '100000'])
  try {
    const rows: string[][] = []
    for (const store of ['sqlite', 'postgres'] as const) {
      const results = []
      for (let index = 0; index < rounds; index++) {
        const databaseUrl = store === 'postgres' ? await (await postgresCluster()).newDatabase() : undefined
        results.push(await round(store, fake.url, databaseUrl))
      }
      const over = results.map((result) => result.seconds - GRACE_S).sort((a, b) => a - b)
      rows.push([
        store === 'sqlite' ? `SQLite: ${OWN_CHATS} own replies` : `PostgreSQL: ${OWN_CHATS} own replies, ${FOLLOWERS} followers of another instance's`,
        String(rounds),
        `${over[Math.floor(over.length / 2)]!.toFixed(2)} s / ${over.at(-1)!.toFixed(2)} s`,
        results.every((result) => result.code === 0) ? 'all 0' : results.map((result) => result.code).join(','),
        String(results.reduce((sum, result) => sum + result.streaming, 0)),
      ])
    }
    return {
      title: `Shutdown: SIGTERM to exit with replies that outlast SHUTDOWN_GRACE=${GRACE_S}s (the built server); target: within the grace + 2 s`,
      header: ['load', 'rounds', 'past the grace, median / max', 'exit codes', 'replies left streaming'],
      rows,
    }
  } finally {
    await stopped(fake.child)
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } })
  const { title, header, rows } = await shutdownTime(Number(values.rounds))
  console.log(title)
  console.log(header.join(' | '))
  for (const row of rows) console.log(row.join(' | '))
  process.exit(0)
}
