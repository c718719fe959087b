/**
 * Seeds a database for the list benchmarks: `sessions` sessions with `messagesPerSession`
 * messages each, written the way the service writes them (its migrations, its triggers), with
 * timestamps spread over the past so the orderings are realistic.
 */
import { randomUUID } from 'node:crypto'
import { existsSync, renameSync, rmSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { SqliteChatStore } from '../../lib/store/sqlite/chat-store.ts'

export interface SeedResult {
  path: string
  sessionIds: string[]
  seconds: number
}

export function seedDatabase(path: string, sessions: number, messagesPerSession: number): SeedResult {
  const startedAt = performance.now()
  const building = `${path}.building`
  for (const file of [building, `${building}-wal`, `${building}-shm`]) rmSync(file, { force: true })
  const store = new SqliteChatStore(building)
  const db = store.db
  // A throwaway file being built: durability does not matter until it is renamed into place.
  db.exec('PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA wal_autocheckpoint = 0')
  const insertSession = db.prepare('INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)')
  const insertMessage = db.prepare(
    `INSERT INTO messages (id, session_id, role, content, model, tokens_used, status, created_at)
     VALUES (?, ?, ?, ?, ?, ?, 'complete', ?)`,
  )
  const sessionIds: string[] = []
  const base = Date.parse('2025-01-01T00:00:00.000Z')
  db.exec('BEGIN')
  for (let session = 0; session < sessions; session++) {
    const id = randomUUID()
    sessionIds.push(id)
    // Sessions interleave in time, so the session list is not simply insertion order.
    const start = base + ((session * 7919) % sessions) * 60_000
    insertSession.run(id, `Session ${session}`, new Date(start).toISOString(), new Date(start).toISOString())
    for (let index = 0; index < messagesPerSession; index++) {
      const user = index % 2 === 0
      insertMessage.run(
        randomUUID(),
        id,
        user ? 'user' : 'assistant',
        user ? `Question ${index} of session ${session}: how does this work?` : `An answer of a few sentences to question ${index - 1}. `.repeat(4),
        user ? null : 'llama3.2',
        user ? null : 120,
        new Date(start + index * 1500).toISOString(),
      )
    }
    if (session % 2000 === 1999) {
      db.exec('COMMIT')
      db.exec('BEGIN')
    }
  }
  db.exec('COMMIT')
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  store.close()
  renameSync(building, path)
  rmSync(`${building}-wal`, { force: true })
  rmSync(`${building}-shm`, { force: true })
  return { path, sessionIds, seconds: (performance.now() - startedAt) / 1000 }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { db: { type: 'string' }, sessions: { type: 'string', default: '10000' }, messages: { type: 'string', default: '100' } },
  })
  const path = values.db ?? 'bench-results/seeded.db'
  if (existsSync(path)) rmSync(path)
  const result = seedDatabase(path, Number(values.sessions), Number(values.messages))
  console.log(`seeded ${path}: ${values.sessions} sessions x ${values.messages} messages in ${result.seconds.toFixed(1)} s`)
}
