import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { silentLogger } from '../lib/log.ts'
import { ServerLockError } from '../lib/server-lock.ts'
import { startServer } from '../lib/server.ts'
import { ChatStore } from '../lib/store.ts'
import { recordingLogger, testConfig, within } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

const tempDb = () => join(mkdtempSync(join(tmpdir(), 'chat-ollama-lock-')), 'chat.db')

/** Writes a lock row as another server would have left it. */
function plantLock(dbPath: string, holder: { hostname: string; pid: number; renewedAgoMs: number }): void {
  const store = new ChatStore(dbPath)
  const renewedAt = new Date(Date.now() - holder.renewedAgoMs).toISOString()
  store.db
    .prepare('INSERT OR REPLACE INTO server_lock (id, holder, hostname, pid, acquired_at, renewed_at) VALUES (1, ?, ?, ?, ?, ?)')
    .run('planted', holder.hostname, holder.pid, renewedAt, renewedAt)
  store.close()
}

test('a second server on the same database refuses to start with one line; after a SIGKILL of the first, the next one takes over', async (t) => {
  const dbPath = tempDb()
  const env = { OLLAMA_HOST: '127.0.0.1:9', DB_PATH: dbPath }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const refused = await spawnServer(t, SERVER_FROM_SOURCE, { env }).then(
    () => assert.fail('the second server started'),
    (error: Error) => error.message,
  )
  assert.match(refused, /exited with 1 before listening: chat-ollama: could not start: the database .* is in use by another chat-ollama server \(pid \d+ on /)
  assert.equal(refused.trim().split('\n').length, 1, 'one line')
  assert.equal((await fetch(`${first.url}/health`)).status, 200, 'the first server is unharmed')

  first.child.kill('SIGKILL')
  await first.exited
  const next = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const takeOver = await next.logged('took over the database from a server that is gone')
  assert.equal(takeOver.pid, first.child.pid)
  next.child.kill('SIGTERM')
  assert.equal((await next.exited).code, 0)
})

test('a lock renewed recently by a server on another host is respected; a stale one is taken over', async () => {
  const dbPath = tempDb()
  plantLock(dbPath, { hostname: 'elsewhere', pid: 1, renewedAgoMs: 1_000 })
  await assert.rejects(startServer(testConfig({ DB_PATH: dbPath }), { log: silentLogger }), (error: Error) => {
    assert.ok(error instanceof ServerLockError)
    assert.match(error.message, /pid 1 on elsewhere/)
    return true
  })

  plantLock(dbPath, { hostname: 'elsewhere', pid: 1, renewedAgoMs: 60_000 })
  const log = recordingLogger()
  const running = await startServer(testConfig({ DB_PATH: dbPath }), { log })
  assert.ok(log.entries.some((entry) => entry.message === 'took over the database from a server that is gone' && entry.fields.host === 'elsewhere'))
  await running.shutdown()
  const store = new ChatStore(dbPath)
  assert.equal(store.db.prepare('SELECT count(*) AS n FROM server_lock').get()!.n, 0, 'a clean stop releases the lock')
  store.close()
})

test('a lock left on this host by a process that no longer runs is taken over at once', async () => {
  const dbPath = tempDb()
  // Pids are below 2^22 on Linux: this one runs nowhere.
  plantLock(dbPath, { hostname: hostname(), pid: 2 ** 22 + 7, renewedAgoMs: 0 })
  const running = await startServer(testConfig({ DB_PATH: dbPath }), { log: silentLogger })
  await running.shutdown()
})

test('a server whose lock another server took over stops saying so', async () => {
  const dbPath = tempDb()
  const log = recordingLogger()
  const running = await startServer(testConfig({ DB_PATH: dbPath }), { log }, { lockTimings: { renewMs: 20, staleMs: 60_000 } })
  plantLock(dbPath, { hostname: 'elsewhere', pid: 1, renewedAgoMs: 0 })
  await within(10_000, 'the lock to be found lost', running.lockLost)
  assert.ok(log.entries.some((entry) => entry.level === 'error' && /another server took over/.test(entry.message)))
  await running.shutdown()
  const store = new ChatStore(dbPath)
  assert.equal(store.db.prepare('SELECT hostname FROM server_lock').get()!.hostname, 'elsewhere', 'the other server keeps its lock')
  store.close()
})
