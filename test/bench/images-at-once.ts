/**
 * Many image chats at once: 8 chats of 4 large photos each sent together to the built server
 * (as the container runs it), with the default IMAGE_CONCURRENCY beside a server that processes
 * them all at once (IMAGE_CONCURRENCY=32): the server's peak RSS (the kernel's VmHWM) and how long
 * the chats took.
 * Run alone: `node --import tsx test/bench/images-at-once.ts`; `npm run bench` runs it too.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dataUrl, largeJpeg } from '../support/images.ts'
import { startFake, startServer } from './processes.ts'

const CHATS = 8
const PHOTOS = 4

const peakRssMb = (pid: number) => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

async function measure(fakeUrl: string, body: string, concurrency: string): Promise<string[]> {
  const server = await startServer({
    OLLAMA_HOST: fakeUrl, IMAGE_CONCURRENCY: concurrency, DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-images-')), 'chat.db'),
  })
  const url = server.url
  try {
    const before = peakRssMb(server.child.pid!)
    const at = performance.now()
    const answers = await Promise.all(Array.from({ length: CHATS }, async () => {
      const response = await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      await response.arrayBuffer()
      return response.status
    }))
    const took = performance.now() - at
    const ok = answers.filter((status) => status === 200).length
    return [concurrency, `${ok}/${CHATS}`, `${(took / 1000).toFixed(2)} s`, `${before.toFixed(0)} -> ${peakRssMb(server.child.pid!).toFixed(0)} MB`]
  } finally {
    server.child.kill('SIGTERM')
  }
}

export async function imagesAtOnce(): Promise<{ title: string; header: string[]; rows: string[][] }> {
  const fake = await startFake(['--tokens', '2', '--vision', 'gemma3:4b'])
  try {
    const photo = await largeJpeg(3 * 2 ** 20)
    const body = JSON.stringify({ message: 'What is in these photos?', model: 'gemma3:4b', stream: false, images: Array.from({ length: PHOTOS }, () => dataUrl(photo, 'image/jpeg')) })
    const rows = [await measure(fake.url, body, '2'), await measure(fake.url, body, '32')]
    return {
      title: `${CHATS} chats of ${PHOTOS} ${(photo.byteLength / 2 ** 20).toFixed(1)} MiB photos sent at once (SQLite, the built server): peak RSS target < 1 GB`,
      header: ['IMAGE_CONCURRENCY', 'answered 200', 'all answered in', 'server peak RSS (VmHWM)'],
      rows,
    }
  } finally {
    fake.child.kill('SIGTERM')
  }
}

if (import.meta.main) {
  const { title, header, rows } = await imagesAtOnce()
  console.log(title)
  console.log(header.join(' | '))
  for (const row of rows) console.log(row.join(' | '))
  process.exit(0)
}
