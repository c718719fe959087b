/**
 * OpenAI's Vector Stores (collections here) with the official `openai` SDK as the client:
 * create with files, uploadAndPoll and createAndPoll (which poll until the file is ingested),
 * search, list and delete; another user's store answers as a missing one.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI, { toFile } from 'openai'
import { authServer, fakeOllama, testServer } from './support/app.ts'
import { DEFAULT_MODELS } from './support/fake-ollama.ts'

const EMBED = 'nomic-embed-text:latest'
const HANDBOOK = '# Handbook\n\n## Leave\n\nEvery employee has 25 days of paid leave a year.\n\n## Expenses\n\nReceipts are filed within 30 days.\n'

async function client(t: TestContext) {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const server = await testServer(t, fake)
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
}

test('the SDK makes a vector store, uploads and polls its files, searches it, and deletes it', async (t) => {
  const openai = await client(t)
  const first = await openai.files.create({ file: await toFile(Buffer.from(HANDBOOK), 'handbook.md'), purpose: 'assistants' })
  const store = await openai.vectorStores.create({ name: 'Policies', file_ids: [first.id] })
  assert.deepEqual([store.object, store.name, store.file_counts.total], ['vector_store', 'Policies', 1])
  const polled = await openai.vectorStores.files.createAndPoll(store.id, { file_id: first.id }, { pollIntervalMs: 50 })
  assert.deepEqual([polled.object, polled.status, polled.vector_store_id, polled.last_error], ['vector_store.file', 'completed', store.id, null])
  const uploaded = await openai.vectorStores.files.uploadAndPoll(store.id, await toFile(Buffer.from('Trains run on rails between the cities.\n'), 'trains.txt'), { pollIntervalMs: 50 })
  assert.equal(uploaded.status, 'completed')
  const retrieved = await openai.vectorStores.retrieve(store.id)
  assert.deepEqual([retrieved.file_counts.completed, retrieved.file_counts.total, retrieved.status], [2, 2, 'completed'])
  const files = await openai.vectorStores.files.list(store.id)
  assert.deepEqual(files.data.map((file) => file.id).sort(), [first.id, uploaded.id].sort())

  const page = await openai.vectorStores.search(store.id, { query: 'how many days of paid leave', max_num_results: 2 })
  const [best] = page.data
  assert.deepEqual([best!.file_id, best!.filename], [first.id, 'handbook.md'])
  assert.match(best!.content[0]!.text, /25 days of paid leave/)
  assert.deepEqual(best!.attributes, { heading: 'Handbook > Leave' })

  await assert.rejects(openai.vectorStores.create({ name: 'x', expires_after: { anchor: 'last_active_at', days: 1 } }), (error: any) => error.status === 400 && error.param === 'expires_after')
  await assert.rejects(openai.vectorStores.search(store.id, { query: 'x', filters: { type: 'eq', key: 'a', value: 'b' } }), (error: any) => error.status === 400 && error.param === 'filters')
  assert.deepEqual(await openai.vectorStores.files.delete(uploaded.id, { vector_store_id: store.id }), { id: uploaded.id, object: 'vector_store.file.deleted', deleted: true })
  assert.equal((await openai.files.retrieve(uploaded.id)).id, uploaded.id)
  assert.deepEqual((await openai.vectorStores.list()).data.map((listed) => listed.id), [store.id])
  assert.deepEqual(await openai.vectorStores.delete(store.id), { id: store.id, object: 'vector_store.deleted', deleted: true })
  await assert.rejects(openai.vectorStores.retrieve(store.id), (error: any) => error instanceof OpenAI.NotFoundError)
})

test('another user\'s vector store and files answer exactly as missing ones', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const { url, userWithKey } = await authServer(t, fake)
  const alice = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await userWithKey('alice')).key, maxRetries: 0 })
  const bob = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await userWithKey('bob')).key, maxRetries: 0 })
  const file = await alice.files.create({ file: await toFile(Buffer.from(HANDBOOK), 'handbook.md'), purpose: 'assistants' })
  const store = await alice.vectorStores.create({ name: 'Mine', file_ids: [file.id] })
  const missing = '00000000-0000-4000-8000-000000000000'
  const refusal = async (call: Promise<unknown>) => {
    const error: any = await call.then(() => assert.fail('answered'), (caught) => caught)
    return [error.status, error.code, error.param, String(error.error?.message).replace(/[0-9a-f-]{36}/g, 'ID')]
  }
  assert.deepEqual(await refusal(bob.vectorStores.retrieve(store.id)), await refusal(bob.vectorStores.retrieve(missing)))
  assert.deepEqual(await refusal(bob.vectorStores.search(store.id, { query: 'leave' })), await refusal(bob.vectorStores.search(missing, { query: 'leave' })))
  assert.deepEqual(await refusal(bob.vectorStores.files.list(store.id)), await refusal(bob.vectorStores.files.list(missing)))
  assert.deepEqual(await refusal(bob.vectorStores.delete(store.id)), await refusal(bob.vectorStores.delete(missing)))
  const own = await bob.vectorStores.create({ name: 'Bob' })
  assert.deepEqual(await refusal(bob.vectorStores.files.create(own.id, { file_id: file.id })), await refusal(bob.vectorStores.files.create(own.id, { file_id: missing })))
  assert.deepEqual(await refusal(bob.vectorStores.create({ name: 'x', file_ids: [file.id] })), await refusal(bob.vectorStores.create({ name: 'x', file_ids: [missing] })))
  assert.equal((await alice.vectorStores.retrieve(store.id)).file_counts.total, 1)
})
