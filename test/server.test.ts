import assert from 'node:assert/strict'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { json } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

test('started from a fresh folder it creates ./data/chat.db, reports degraded without Ollama, and exits 0 on SIGTERM', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-start-'))
  const server = await spawnServer(t, SERVER_FROM_SOURCE, {
    cwd: folder,
    env: { OLLAMA_HOST: '127.0.0.1:9', DB_PATH: '' },
  })
  const response = await fetch(`${server.url}/health`)
  assert.equal(response.status, 200)
  assert.equal((await json(response)).status, 'degraded')
  assert.ok(existsSync(join(folder, 'data', 'chat.db')))
  server.child.kill('SIGTERM')
  assert.deepEqual(await server.exited, { code: 0, signal: null })
  assert.ok(server.lines.some((line) => line.includes('"msg":"stopped"')))
})

test('SIGINT stops it the same way', async (t) => {
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { DB_PATH: ':memory:' } })
  server.child.kill('SIGINT')
  assert.deepEqual(await server.exited, { code: 0, signal: null })
})

test('a database it cannot open stops start-up with exit code 1', async (t) => {
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-baddb-'))
  await assert.rejects(
    spawnServer(t, SERVER_FROM_SOURCE, { env: { DB_PATH: folder } }),
    /exited with 1 before listening: chat-ollama: could not start/,
  )
})
