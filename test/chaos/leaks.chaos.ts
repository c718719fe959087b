import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import { test } from 'node:test'
import { fakeOllama, testServer } from '../support/app.ts'

const CHATS = Number(process.env.LEAK_CHATS ?? 10_000)

test(`${CHATS} chats: memory, open handles and the registry return to where they started`, async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc
  assert.ok(gc, 'run with --expose-gc')
  const fake = await fakeOllama(t, { scenario: { tokens: ['a ', 'b ', 'c'] } })
  const { url, app } = await testServer(t, fake)
  const agent = new Agent({ keepAlive: true, maxSockets: 50 })
  t.after(() => agent.destroy())
  const chat = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const req = request(`${url}/v1/chat`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`))
        res.resume()
        res.on('end', () => resolve())
      })
      req.on('error', reject)
      req.end(JSON.stringify({ message: `chat ${index}`, stream: index % 3 !== 0 }))
    })
  const run = async (count: number) => {
    for (let index = 0; index < count; index += 50) await Promise.all(Array.from({ length: 50 }, (_, offset) => chat(index + offset)))
  }
  const measure = () => {
    // The fake keeps a record of every request; that is the test's memory, not the service's.
    fake.requests.length = 0
    gc()
    return { heapMb: process.memoryUsage().heapUsed / 1048576, handles: process.getActiveResourcesInfo().length }
  }
  await run(1000)
  const start = measure()
  await run(CHATS)
  await fake.waitFor(() => app.generations.size === 0)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const end = measure()
  console.log(`heap ${start.heapMb.toFixed(1)} -> ${end.heapMb.toFixed(1)} MB, handles ${start.handles} -> ${end.handles}`)
  assert.equal(app.generations.size, 0)
  assert.ok(end.heapMb - start.heapMb < 5, `heap grew by ${(end.heapMb - start.heapMb).toFixed(1)} MB over ${CHATS} chats`)
  assert.ok(end.handles <= start.handles + 5, `handles grew from ${start.handles} to ${end.handles}`)
})
