import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { test } from 'node:test'
import { silentLogger } from '../lib/observability/log.ts'
import { ServerLockError } from '../lib/store/sqlite/server-lock.ts'
import { startServer } from '../lib/server.ts'
import { SqliteChatStore } from '../lib/store/sqlite/chat-store.ts'
import { recordingLogger, testConfig, within } from './support/app.ts'
import { PROJECT_ROOT, SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

const tempDb = () => join(mkdtempSync(join(tmpdir(), 'chat-ollama-lock-')), 'chat.db')

test('a second server on the same database refuses to start with one line; after a SIGKILL of the first, the next one starts at once', async (t) => {
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
  assert.equal(statSync(`${dbPath}.lock`).mode & 0o777, 0o600)

  first.child.kill('SIGKILL')
  await first.exited
  const next = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const takeOver = await next.logged('took over the database from a server that is gone')
  assert.equal(takeOver.pid, first.child.pid)
  next.child.kill('SIGTERM')
  assert.equal((await next.exited).code, 0)
})

test('two servers in one process see each other too; a clean stop frees the database for the next', async () => {
  const dbPath = tempDb()
  const running = await startServer(testConfig({ DB_PATH: dbPath }), { log: silentLogger })
  await assert.rejects(startServer(testConfig({ DB_PATH: dbPath }), { log: silentLogger }), (error: Error) => {
    assert.ok(error instanceof ServerLockError)
    assert.match(error.message, new RegExp(`pid ${process.pid} on `))
    return true
  })
  await running.shutdown()
  const store = new SqliteChatStore(dbPath)
  assert.equal(store.db.prepare('SELECT count(*) AS n FROM server_lock').get()!.n, 0, 'a clean stop releases the lock')
  store.close()
  const log = recordingLogger()
  const again = await startServer(testConfig({ DB_PATH: dbPath }), { log })
  assert.ok(!log.entries.some((entry) => entry.message === 'took over the database from a server that is gone'))
  await again.shutdown()
})

test('a server killed but never reaped (a zombie, as under npm as PID 1) does not keep the next one from starting', async (t) => {
  const dbPath = tempDb()
  // sh starts the server, prints its pid, then becomes `sleep`, which never reaps it.
  const shell = spawn('sh', ['-c', `"${process.execPath}" ${SERVER_FROM_SOURCE.map((arg) => `"${arg}"`).join(' ')} & echo "pid $!"; exec sleep 600`], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_FORMAT: 'json', LOG_LEVEL: 'info', DB_PATH: dbPath, OLLAMA_HOST: '127.0.0.1:9' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.after(() => shell.kill('SIGKILL'))
  let serverPid = 0
  await within(20_000, 'the server to listen', new Promise<void>((resolve) => {
    createInterface({ input: shell.stdout! }).on('line', (line) => {
      if (line.startsWith('pid ')) serverPid = Number(line.slice(4))
      if (line.includes('"msg":"listening"')) resolve()
    })
  }))
  process.kill(serverPid, 'SIGKILL')
  // A zombie: its main thread is `Z` and its other threads are gone (they release its files last).
  const isZombie = () => readFileSync(`/proc/${serverPid}/stat`, 'utf8').split(') ')[1]![0] === 'Z' && readdirSync(`/proc/${serverPid}/task`).length === 1
  await within(10_000, 'the killed server to be a zombie', (async () => {
    while (!isZombie()) await new Promise((resolve) => setTimeout(resolve, 10))
  })())
  process.kill(serverPid, 0) // still "there" for kill(pid, 0): a liveness guess would take it for alive

  const log = recordingLogger()
  const next = await startServer(testConfig({ DB_PATH: dbPath }), { log })
  assert.ok(log.entries.some((entry) => entry.message === 'took over the database from a server that is gone' && entry.fields.pid === serverPid))
  await next.shutdown()
})
