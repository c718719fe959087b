import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { test } from 'node:test'
import { fakeOllama, json, sseEvents, takeText } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

const TOKENS = Array.from({ length: 10 }, (_, index) => `t${index} `)

const postChat = (url: string, body: unknown) =>
  fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Reads a live SSE response until its start event and `text` have arrived (bounded in time). */
async function readUntilText(response: Response, text: string): Promise<{ start: any; rest: AsyncGenerator<any> }> {
  const rest = sseEvents(response)
  const events = await takeText(rest, text)
  return { start: events[0]!.data, rest }
}

/** The stored row of a message, read through a connection of our own. */
function storedRow(dbPath: string, messageId: string): any {
  const db = new DatabaseSync(dbPath, { readOnly: true })
  try {
    const row = db.prepare('SELECT content, status FROM messages WHERE id = ?').get(messageId)
    return row && { ...row }
  } finally {
    db.close()
  }
}

const tempDb = () => join(mkdtempSync(join(tmpdir(), 'chat-ollama-crash-')), 'chat.db')

test('killed with SIGKILL mid-reply and restarted: the reply is interrupted, with its checkpointed text', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, stallAfterTokens: 3 } })
  const dbPath = tempDb()
  const env = { OLLAMA_HOST: fake.url, DB_PATH: dbPath, CHECKPOINT_INTERVAL: '50ms' }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const { start } = await readUntilText(await postChat(first.url, { message: 'crash me' }), 't0 t1 t2 ')
  // Wait for the checkpoint to reach the database, as a reader outside the process sees it.
  await fake.waitFor(() => storedRow(dbPath, start.message_id)?.content === 't0 t1 t2 ')
  first.child.kill('SIGKILL')
  assert.equal((await first.exited).signal, 'SIGKILL')

  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const messages = await json(await fetch(`${second.url}/v1/sessions/${start.session_id}/messages`))
  assert.deepEqual(messages.messages.map((message: any) => [message.role, message.content, message.status]), [
    ['user', 'crash me', 'complete'],
    ['assistant', 't0 t1 t2 ', 'interrupted'],
  ])
  assert.equal((await fetch(`${second.url}/v1/sessions/${start.session_id}/stream`)).status, 404)
  const integrity = new DatabaseSync(dbPath, { readOnly: true })
  assert.equal(integrity.prepare('PRAGMA integrity_check').get()!.integrity_check, 'ok')
  integrity.close()
  second.child.kill('SIGTERM')
  assert.equal((await second.exited).code, 0)
})

test('SIGTERM lets a running reply finish within SHUTDOWN_GRACE, stores it, and exits 0', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, tokenDelayMs: 25 } })
  const dbPath = tempDb()
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: fake.url, DB_PATH: dbPath, SHUTDOWN_GRACE: '10s' } })
  const { start, rest } = await readUntilText(await postChat(server.url, { message: 'finish me' }), 't0 ')
  server.child.kill('SIGTERM')
  let last: any
  for await (const event of rest) if ('data' in event) last = event.data
  assert.equal(last.type, 'done')
  assert.deepEqual(await server.exited, { code: 0, signal: null })
  assert.deepEqual(storedRow(dbPath, start.message_id), { content: TOKENS.join(''), status: 'complete' })
})

test('SIGTERM with a reply that outlasts SHUTDOWN_GRACE: stored as interrupted, the stream told, exit 0', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, stallAfterTokens: 2 } })
  const dbPath = tempDb()
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: fake.url, DB_PATH: dbPath, SHUTDOWN_GRACE: '200ms' } })
  const response = await postChat(server.url, { message: 'never ends' })
  const { start, rest } = await readUntilText(response, 't0 t1 ')
  server.child.kill('SIGTERM')
  let last: any
  for await (const event of rest) if ('data' in event) last = event.data
  assert.equal(last.type, 'error')
  assert.match(last.error, /shut down/)
  assert.deepEqual(await server.exited, { code: 0, signal: null })
  assert.deepEqual(storedRow(dbPath, start.message_id), { content: 't0 t1 ', status: 'interrupted' })
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
})

test('SIGTERM while a chat still waits for Ollama (a model loading): it finishes within SHUTDOWN_GRACE and the database closes last', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const dbPath = tempDb()
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: fake.url, DB_PATH: dbPath, SHUTDOWN_GRACE: '30s' } })
  const pending = postChat(server.url, { message: 'slow start' })
  await fake.waitFor(() => fake.chatRequests().length === 1)
  server.child.kill('SIGTERM')
  const shutdown = await server.logged('shutting down')
  assert.equal(shutdown.running_generations, 1, 'the chat still starting is counted')
  fake.release(TOKENS.length + 1)
  const { start, rest } = await readUntilText(await pending, 't0 ')
  let last: any
  for await (const event of rest) if ('data' in event) last = event.data
  assert.equal(last.type, 'done')
  assert.deepEqual(await server.exited, { code: 0, signal: null })
  assert.deepEqual(storedRow(dbPath, start.message_id), { content: TOKENS.join(''), status: 'complete' })
})

test('SIGTERM while a chat waits for Ollama past SHUTDOWN_GRACE: it ends interrupted with an error event, nothing is left streaming', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: TOKENS, paced: true } })
  const dbPath = tempDb()
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: fake.url, DB_PATH: dbPath, SHUTDOWN_GRACE: '100ms' } })
  const response = await (async () => {
    const pending = postChat(server.url, { message: 'never starts' })
    await fake.waitFor(() => fake.chatRequests().length === 1)
    server.child.kill('SIGTERM')
    return pending
  })()
  assert.equal(response.status, 200)
  const events: any[] = []
  for await (const event of sseEvents(response)) if ('data' in event) events.push(event.data)
  assert.deepEqual(events.map((event) => event.type), ['start', 'error'])
  assert.match(events[1].error, /shut down/)
  assert.deepEqual(await server.exited, { code: 0, signal: null })
  assert.deepEqual(storedRow(dbPath, events[0].message_id), { content: '', status: 'interrupted' })
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
})
