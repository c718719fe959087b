/**
 * What one checkpoint of a streaming reply costs the store (the UPDATE of its growing text every
 * CHECKPOINT_INTERVAL), on both stores: 40 replies of 50 checkpoints each, 200 characters more
 * each time. Run alone: `node --import tsx test/bench/checkpoint-cost.ts`; `npm run bench` runs it too.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openStore } from '../../lib/app.ts'
import { loadConfig } from '../../lib/shared/config.ts'
import { postgresCluster } from '../support/postgres.ts'

export async function checkpointCost(): Promise<string[][]> {
  const rows: string[][] = []
  for (const kind of ['SQLite', 'PostgreSQL'] as const) {
    const env = kind === 'SQLite' ? { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-checkpoint-')), 'chat.db') } : { DATABASE_URL: await (await postgresCluster()).newDatabase() }
    const database = await openStore(loadConfig({ ...env, OLLAMA_HOST: '127.0.0.1:9' }))
    await database.ping()
    const store = database.chats
    const times: number[] = []
    for (let reply = 0; reply < 40; reply++) {
      const turn = await store.beginTurn({ sessionId: randomUUID(), ownerId: 'local', content: 'a question', model: 'llama3.2' })
      let text = ''
      for (let checkpoint = 0; checkpoint < 50; checkpoint++) {
        text += 'word '.repeat(40)
        const at = performance.now()
        await store.checkpointReply(turn.reply.id, text)
        times.push(performance.now() - at)
      }
      await store.finishReply(turn.reply.id, { content: text, status: 'complete' })
    }
    await database.close()
    times.sort((a, b) => a - b)
    const at = (p: number) => `${times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]!.toFixed(3)} ms`
    rows.push([kind, String(times.length), at(50), at(99)])
  }
  return rows
}

if (import.meta.main) {
  console.log('A checkpoint (UPDATE of a streaming reply\'s text): store | checkpoints | p50 | p99')
  for (const row of await checkpointCost()) console.log(row.join(' | '))
  process.exit(0)
}
