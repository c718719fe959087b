/**
 * Many image chats at once: 8 chats of 4 large photos each sent together to the built server
 * (as the container runs it), with the default IMAGE_CONCURRENCY beside a server that processes
 * them all at once (IMAGE_CONCURRENCY=32): the server's peak RSS (the kernel's VmHWM) and how long
 * the chats took.
 * Run alone: `node --import tsx test/bench/images-at-once.ts`; `npm run bench` runs it too.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { dataUrl, largeJpeg } from '../support/images.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const CHATS = 8
const PHOTOS = 4

function started(args: string[], env: Record<string, string>, ready: (line: string) => string | undefined): Promise<{ child: ChildProcess; value: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const value = ready(line)
      if (value !== undefined) resolve({ child, value })
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

const peakRssMb = (pid: number) => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

async function measure(fakeUrl: string, body: string, concurrency: string): Promise<string[]> {
  const server = await started(['dist/server.mjs'], {
    PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT: '0', OLLAMA_HOST: fakeUrl, IMAGE_CONCURRENCY: concurrency,
    DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-images-')), 'chat.db'),
  }, (line) => (line.includes('"listening"') ? JSON.parse(line).url : undefined))
  const url = server.value
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
  const fake = await started(['--import', 'tsx', 'test/support/fake-ollama.ts', '--tokens', '2', '--vision', 'gemma3:4b'], {}, (line) => (line.startsWith('{"url"') ? JSON.parse(line).url : undefined))
  try {
    const photo = await largeJpeg(3 * 2 ** 20)
    const body = JSON.stringify({ message: 'What is in these photos?', model: 'gemma3:4b', stream: false, images: Array.from({ length: PHOTOS }, () => dataUrl(photo, 'image/jpeg')) })
    const rows = [await measure(fake.value, body, '2'), await measure(fake.value, body, '32')]
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
