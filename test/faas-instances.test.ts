/**
 * The function bundles as FaaS copies on one PostgreSQL database: `deno serve` runs the chat
 * bundle in one process and the stream and cancel bundles in another, unchanged (dist/functions/),
 * each configured from its environment only. A chat started on the first is followed and
 * cancelled on the second.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { PostgresStore } from '../lib/store/postgres/store.ts'
import { fakeOllama, json, sseEvents, take, takeText, type SseEvent } from './support/app.ts'
import { postgresCluster } from './support/postgres.ts'
import { PROJECT_ROOT } from './support/process.ts'

const DENO = join(PROJECT_ROOT, 'node_modules/.bin/deno')

/** `deno serve` of `entry` on a free port, from an empty folder; resolves with its URL once it listens. */
function denoServe(t: TestContext, entry: string, env: Record<string, string>): Promise<string> {
  const child = spawn(DENO, ['serve', '--allow-net', '--allow-env', '--allow-read', '--allow-sys', '--port', '0', entry], {
    cwd: mkdtempSync(join(tmpdir(), 'chat-ollama-faas-')),
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => child.kill('SIGKILL'))
  let output = ''
  return new Promise((resolve, reject) => {
    const read = (data: Buffer) => {
      output += data
      const port = /Listening on https?:\/\/[^:]+:(\d+)/.exec(output)?.[1]
      if (port) resolve(`http://127.0.0.1:${port}`)
    }
    child.stdout!.on('data', read)
    child.stderr!.on('data', read)
    child.once('exit', (code) => reject(new Error(`deno serve ${entry} exited with ${code}: ${output}`)))
  })
}

test('FaaS: two deno serve processes of the bundles on one database, chat on one, follow and cancel on the other', async (t) => {
  const fake = await fakeOllama(t)
  const databaseUrl = await (await postgresCluster()).newDatabase()
  const store = new PostgresStore(databaseUrl, { maxConnections: 2, instanceId: 'test' })
  t.after(() => store.close())
  await store.access.addUser('ann', 'user')
  const auth = { authorization: `Bearer ${(await store.access.createKey('ann')).key}` }
  const env = { DATABASE_URL: databaseUrl, OLLAMA_HOST: fake.url, AUTH: 'required', RATE_LIMIT: '0', LOG_LEVEL: 'warn' }
  const functions = join(PROJECT_ROOT, 'dist/functions')
  // The second copy serves two bundles, each as it is: a platform would route by path the same way.
  const router = join(mkdtempSync(join(tmpdir(), 'chat-ollama-faas-router-')), 'router.mjs')
  writeFileSync(router, [
    `import stream from ${JSON.stringify(join(functions, 'session-stream.mjs'))}`,
    `import cancel from ${JSON.stringify(join(functions, 'session-cancel.mjs'))}`,
    'export default { fetch: (request) => (new URL(request.url).pathname.endsWith("/cancel") ? cancel : stream).fetch(request) }',
  ].join('\n'))
  const [chatUrl, followUrl] = await Promise.all([denoServe(t, join(functions, 'chat.mjs'), env), denoServe(t, router, env)])

  fake.next({ tokens: ['one ', 'two ', 'three'], paced: true })
  fake.release(1)
  const started = await fetch(`${chatUrl}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ message: 'hello' }) })
  assert.equal(started.status, 200)
  const live = sseEvents(started)
  const seen = await takeText(live, 'one ')
  const { session_id: sessionId, message_id: replyId } = seen[0]!.data

  const followed = sseEvents(await fetch(`${followUrl}/v1/sessions/${sessionId}/stream`, { headers: auth }))
  assert.deepEqual(await take(followed, seen.length), seen, 'the same events on the other copy')
  const cancelled = await json(await fetch(`${followUrl}/v1/sessions/${sessionId}/cancel`, { method: 'POST', headers: auth }))
  assert.deepEqual(cancelled, { session_id: sessionId, message_id: replyId, status: 'cancelled', content: 'one ' })
  assert.ok(fake.chatRequests().at(-1)!.abortedAt !== null, 'Ollama was stopped by the copy that runs the reply')
  const ends: SseEvent[][] = []
  for (const events of [live, followed]) {
    const rest: SseEvent[] = []
    for await (const event of events) if ('data' in event) rest.push(event)
    ends.push(rest)
  }
  assert.deepEqual(ends[0], ends[1], 'both end with the same events')
  assert.equal(ends[0]!.at(-1)!.data.done_reason, 'cancelled')
})
