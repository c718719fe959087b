import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { test } from 'node:test'
import { fakeOllama, parseSse, within } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

/** `npm test` kills once; `npm run test:chaos` repeats it (CHAOS_ROUNDS). */
const ROUNDS = Number(process.env.CHAOS_ROUNDS ?? 1)
const CLIENTS = 6

interface Confirmed {
  messageId: string
  content: string
}

/** One client chatting until the server dies; returns every reply the server confirmed, each also told to `onConfirmed`. */
async function chatUntilDeath(url: string, client: number, onConfirmed: () => void): Promise<Confirmed[]> {
  const confirmed: Confirmed[] = []
  const confirm = (reply: Confirmed) => {
    confirmed.push(reply)
    onConfirmed()
  }
  for (let turn = 0; ; turn++) {
    const streamed = turn % 2 === 0
    try {
      const response = await fetch(`${url}/v1/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ message: `client ${client} turn ${turn}`, stream: streamed }),
      })
      if (!streamed) {
        if (response.status === 200) {
          const body: any = await response.json()
          confirm({ messageId: body.id, content: body.content })
        }
        continue
      }
      const { events } = parseSse(await response.text())
      const done = events.find((event) => event.data.type === 'done')
      if (done) {
        const text = events.filter((event) => event.data.type === 'token').map((event) => event.data.content).join('')
        confirm({ messageId: done.data.message_id, content: text })
      }
    } catch {
      // The connection died with the server: what was confirmed before is what counts.
      return confirmed
    }
  }
}

for (let round = 1; round <= ROUNDS; round++) {
  test(`SIGKILL at a random moment under load (round ${round}/${ROUNDS}): the database is intact and every confirmed reply is stored exactly`, async (t) => {
    const fake = await fakeOllama(t, { scenario: { tokens: Array.from({ length: 8 }, (_, index) => `w${index} `), tokenDelayMs: 4 } })
    const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-chaos-')), 'chat.db')
    const env = { OLLAMA_HOST: fake.url, DB_PATH: dbPath, CHECKPOINT_INTERVAL: '20ms', LOG_LEVEL: 'warn' }
    const first = await spawnServer(t, SERVER_FROM_SOURCE, { env: { ...env, LOG_LEVEL: 'info' } })
    const firstConfirmation = Promise.withResolvers<void>()
    const clients = Array.from({ length: CLIENTS }, (_, client) => chatUntilDeath(first.url, client, firstConfirmation.resolve))
    // Killed at a random moment, but only once a reply was confirmed: the check below needs one.
    await within(20_000, 'a first confirmed reply', firstConfirmation.promise)
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 400))
    first.child.kill('SIGKILL')
    await first.exited
    const confirmed = (await Promise.all(clients)).flat()
    assert.ok(confirmed.length > 0, 'no reply was confirmed before the kill')

    const second = await spawnServer(t, SERVER_FROM_SOURCE, { env: { ...env, LOG_LEVEL: 'info' } })
    second.child.kill('SIGTERM')
    assert.equal((await second.exited).code, 0)
    const db = new DatabaseSync(dbPath, { readOnly: true })
    t.after(() => db.close())
    assert.equal(db.prepare('PRAGMA integrity_check').get()!.integrity_check, 'ok')
    const byId = db.prepare('SELECT content, status FROM messages WHERE id = ?')
    for (const reply of confirmed) {
      assert.deepEqual({ ...byId.get(reply.messageId) }, { content: reply.content, status: 'complete' }, `reply ${reply.messageId}`)
    }
    // Nothing is left half-way: recovery turned every unfinished reply into `interrupted`.
    assert.equal(db.prepare("SELECT count(*) AS n FROM messages WHERE status = 'streaming'").get()!.n, 0)
  })
}
