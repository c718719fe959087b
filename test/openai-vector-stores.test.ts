/**
 * OpenAI's Vector Stores (collections here) with the official `openai` SDK as the client:
 * create with files, uploadAndPoll and createAndPoll (which poll until the file is ingested),
 * search, list and delete; Responses' `file_search` tool over them; another user's store answers
 * as a missing one.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI, { toFile } from 'openai'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { authServer, fakeOllama, STORE, storeEnv, testServer } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'
import { DEFAULT_MODELS } from './support/fake-ollama.ts'

const EMBED = 'nomic-embed-text:latest'
const HANDBOOK = '# Handbook\n\n## Leave\n\nEvery employee has 25 days of paid leave a year.\n\n## Expenses\n\nReceipts are filed within 30 days.\n'

async function client(t: TestContext) {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const server = await testServer(t, fake)
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
}

/** A vector store holding the handbook, ingested. */
async function handbookStore(openai: OpenAI) {
  const file = await openai.files.create({ file: await toFile(Buffer.from(HANDBOOK), 'handbook.md'), purpose: 'assistants' })
  const store = await openai.vectorStores.create({ name: 'Policies' })
  await openai.vectorStores.files.createAndPoll(store.id, { file_id: file.id }, { pollIntervalMs: 50 })
  return { file, store }
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

test('responses.create with file_search answers from the vector store: the search item, its results when included, and file_citation annotations at the [n] it cites', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const server = await testServer(t, fake)
  const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const { file, store } = await handbookStore(openai)
  const tools = [{ type: 'file_search' as const, vector_store_ids: [store.id], max_num_results: 2 }]
  fake.next({ tokens: ['Everyone has ', '25 days a year [1]', ', and [7] is not a source.'] })
  const response = await openai.responses.create({ model: 'llama3.2', input: 'How many days of paid leave?', tools, include: ['file_search_call.results'] })
  const [search, message] = response.output as any[]
  assert.deepEqual([search.type, search.status, search.queries], ['file_search_call', 'completed', ['How many days of paid leave?']])
  assert.deepEqual([search.results[0].file_id, search.results[0].filename, search.results[0].attributes], [file.id, 'handbook.md', { heading: 'Handbook > Leave' }])
  assert.match(search.results[0].text, /25 days of paid leave/)
  assert.ok(search.results.length <= 2)
  const text = 'Everyone has 25 days a year [1], and [7] is not a source.'
  assert.equal(response.output_text, text)
  assert.deepEqual(message.content[0].annotations, [{ type: 'file_citation', file_id: file.id, filename: 'handbook.md', index: text.indexOf('[1]') }])
  assert.deepEqual(response.tools, [{ type: 'file_search', vector_store_ids: [store.id], max_num_results: 2, filters: null, ranking_options: { ranker: 'auto', score_threshold: 0 } }])
  // Ollama got the results as numbered sources just before the question.
  const sent = fake.requests.filter((request) => request.path === '/api/chat').at(-1)!.body.messages
  assert.deepEqual(sent.map((entry: any) => entry.role), ['system', 'user'])
  assert.match(sent[0].content, /\[1\] handbook\.md, Handbook > Leave\nEvery employee has 25 days/)

  // Without include the results are not shown; a retrieve that asks for them shows them.
  const plain = await openai.responses.create({ model: 'llama3.2', input: 'How many days of paid leave?', tools })
  assert.equal((plain.output[0] as any).results, null)
  const retrievedWith = await openai.responses.retrieve(plain.id, { include: ['file_search_call.results'] })
  assert.deepEqual((retrievedWith.output[0] as any).results, search.results)

  // Streamed: the search's events before the text, the annotation after it, the same response at the end.
  fake.next({ tokens: ['See ', '[1].'] })
  const stream = await openai.responses.create({ model: 'llama3.2', input: 'Paid leave?', tools, stream: true })
  const events: any[] = []
  for await (const event of stream) events.push(event)
  assert.deepEqual(events.map((event) => event.type).slice(0, 9), [
    'response.created', 'response.in_progress',
    'response.output_item.added', 'response.file_search_call.in_progress', 'response.file_search_call.searching', 'response.file_search_call.completed', 'response.output_item.done',
    'response.output_item.added', 'response.content_part.added',
  ])
  const added = events.find((event) => event.type === 'response.output_text.annotation.added')
  assert.deepEqual([added.annotation, added.annotation_index, added.output_index], [{ type: 'file_citation', file_id: file.id, filename: 'handbook.md', index: 4 }, 0, 1])
  assert.ok(events.indexOf(added) < events.findIndex((event) => event.type === 'response.output_text.done'))
  assert.deepEqual(events.map((event) => event.sequence_number), events.map((_, index) => index))
  const completed = events.at(-1)
  assert.equal(completed.type, 'response.completed')
  // A replay from the store carries the same events.
  const replayed: any[] = []
  for await (const event of await openai.responses.retrieve(completed.response.id, { stream: true })) replayed.push(event)
  assert.deepEqual(replayed, events)

  // A follow-up along the chain, with the earlier output sent back as input too, works.
  const next = await openai.responses.create({ model: 'llama3.2', previous_response_id: response.id, input: 'And expenses?', tools })
  assert.equal(next.status, 'completed')
  const resent = await openai.responses.create({ model: 'llama3.2', input: [{ role: 'user', content: 'How many days?' }, ...(response.output as any[]), { role: 'user', content: 'And receipts?' }], tools })
  assert.equal(resent.status, 'completed')
  assert.deepEqual((resent.output[0] as any).queries, ['And receipts?'])
  // tool_choice "none" searches nothing.
  const none = await openai.responses.create({ model: 'llama3.2', input: 'Paid leave?', tools, tool_choice: 'none' })
  assert.deepEqual(none.output.map((item) => item.type), ['message'])

  // What this server does not do is refused naming it; an unknown vector store is 404.
  const refused = (body: any) => openai.responses.create({ model: 'llama3.2', input: 'x', ...body }).then(() => assert.fail('answered'), (error: any) => [error.status, error.param])
  assert.deepEqual(await refused({ tools: [{ ...tools[0], filters: { type: 'eq', key: 'a', value: 'b' } }] }), [400, 'tools[0].filters'])
  assert.deepEqual(await refused({ tools: [{ ...tools[0], ranking_options: { score_threshold: 0.5 } }] }), [400, 'tools[0].ranking_options'])
  assert.deepEqual(await refused({ tools: [{ type: 'file_search', vector_store_ids: [] }] }), [400, 'tools[0].vector_store_ids'])
  assert.deepEqual(await refused({ tools: [{ type: 'file_search', vector_store_ids: ['vs_nope'] }] }), [404, 'tools[0].vector_store_ids'])
})

test('file_search in a conversation: the conversation\'s reply keeps its sources, and another user\'s vector store is as missing as none', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const { url, userWithKey } = await authServer(t, fake)
  const alice = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await userWithKey('alice')).key, maxRetries: 0 })
  const bob = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await userWithKey('bob')).key, maxRetries: 0 })
  const { file, store } = await handbookStore(alice)
  const conversation = await alice.conversations.create({})
  fake.next({ tokens: ['25 days [1].'] })
  await alice.responses.create({ model: 'llama3.2', conversation: conversation.id, input: 'How many days of paid leave?', tools: [{ type: 'file_search', vector_store_ids: [store.id] }] })
  const sessionId = conversation.id.slice('conv_'.length).replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')
  const messages = await fetch(`${url}/v1/sessions/${sessionId}/messages`, { headers: { authorization: `Bearer ${alice.apiKey}` } }).then((response) => response.json()) as any
  const reply = messages.messages.at(-1)
  assert.equal(reply.content, '25 days [1].')
  assert.deepEqual([reply.sources[0].n, reply.sources[0].file_id, reply.sources[0].heading], [1, file.id, 'Handbook > Leave'])

  const refusal = (ids: string[]) => bob.responses.create({ model: 'llama3.2', input: 'leave?', tools: [{ type: 'file_search', vector_store_ids: ids }] })
    .then(() => assert.fail('answered'), (error: any) => [error.status, error.param, String(error.error?.message).replace(/[0-9a-f-]{36}/g, 'ID')])
  assert.deepEqual(await refusal([store.id]), await refusal(['00000000-0000-4000-8000-000000000000']))
})

test('killed after a file search was streamed and before any text: after the restart the stored response still has the search its client was sent', async (t) => {
  // Ollama answers (its headers and an empty chunk) and then nothing: no text, so no text checkpoint either.
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED], scenario: { tokens: [''], paced: true } })
  const database = STORE === 'postgres' ? await storeEnv() : { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-fs-')), 'chat.db') }
  const env = { ...database, OLLAMA_HOST: fake.hostPort, INSTANCE_ID: 'file-search-1' }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const openai = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const { store } = await handbookStore(openai)
  fake.release(1)
  const stream = await openai.responses.create({ model: 'llama3.2', input: 'Paid leave?', tools: [{ type: 'file_search', vector_store_ids: [store.id] }], background: true, stream: true })
  const delivered: any[] = []
  for await (const event of stream) {
    delivered.push(event)
    if (event.type === 'response.output_item.done') break
  }
  first.child.kill('SIGKILL')
  await first.exited

  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const id = delivered[0].response.id
  const recovered = await client.responses.retrieve(id)
  assert.equal(recovered.status, 'failed')
  assert.deepEqual(recovered.output.map((item) => item.type), ['file_search_call'])
  // Its events from the store begin with exactly what the client was sent.
  const replayed: any[] = []
  for await (const event of await client.responses.retrieve(id, { stream: true })) replayed.push(event)
  const shape = (event: any) => [event.type, event.sequence_number, event.item?.id ?? event.item_id ?? null]
  assert.deepEqual(replayed.slice(0, delivered.length).map(shape), delivered.map(shape))
})
