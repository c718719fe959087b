/**
 * The stateful Responses API, with the official `openai` SDK as the client, against the server
 * over a socket and the fake Ollama.
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { DatabaseSync } from 'node:sqlite'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { authServer, fakeOllama, storedRows, testServer, within } from './support/app.ts'
import type { FakeOllamaOptions } from './support/fake-ollama.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

async function openAI(t: TestContext, options: FakeOllamaOptions = {}, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, options)
  const server = await testServer(t, fake, env)
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, server, client }
}

const sentMessages = (fake: Awaited<ReturnType<typeof fakeOllama>>) => fake.chatRequests().at(-1)!.body.messages.map((message: any) => [message.role, message.content])

test('create, retrieve, chain with previous_response_id, fork from an older one, input_items, delete', async (t) => {
  const { client, fake } = await openAI(t)
  fake.next({ tokens: ['Paris.'] })
  const first = await client.responses.create({ model: 'llama3.2', instructions: 'Be terse.', input: 'Capital of France?' })
  assert.match(first.id, /^resp_/)
  assert.equal(first.status, 'completed')
  assert.equal(first.output_text, 'Paris.')
  assert.equal(first.usage!.output_tokens, 1)
  assert.deepEqual(sentMessages(fake), [['system', 'Be terse.'], ['user', 'Capital of France?']])

  fake.next({ tokens: ['Lyon.'] })
  const second = await client.responses.create({ model: 'llama3.2', previous_response_id: first.id, input: [{ role: 'user', content: 'And the second city?' }] })
  assert.equal(second.previous_response_id, first.id)
  assert.deepEqual(sentMessages(fake), [['user', 'Capital of France?'], ['assistant', 'Paris.'], ['user', 'And the second city?']], 'history from the store; instructions not carried')

  fake.next({ tokens: ['Berlin.'] })
  const fork = await client.responses.create({ model: 'llama3.2', previous_response_id: first.id, input: 'And of Germany?' })
  assert.deepEqual(sentMessages(fake), [['user', 'Capital of France?'], ['assistant', 'Paris.'], ['user', 'And of Germany?']], 'a fork, the second turn untouched')
  assert.equal((await client.responses.retrieve(second.id)).output_text, 'Lyon.')
  assert.equal((await client.responses.retrieve(fork.id)).output_text, 'Berlin.')

  const items = await client.responses.inputItems.list(second.id)
  assert.deepEqual(items.data.map((item: any) => [item.type, item.role, item.content[0].text]), [['message', 'user', 'And the second city?']])
  const deleted = await client.responses.delete(fork.id)
  void deleted
  await assert.rejects(client.responses.retrieve(fork.id), OpenAI.NotFoundError)
})

test('store: false keeps nothing; an unknown previous_response_id is 404; background needs store; built-in tools are refused', async (t) => {
  const { client, server } = await openAI(t)
  const ephemeral = await client.responses.create({ model: 'llama3.2', input: 'forget me', store: false })
  assert.equal(ephemeral.status, 'completed')
  assert.equal((ephemeral as unknown as { store: boolean }).store, false)
  await assert.rejects(client.responses.retrieve(ephemeral.id), OpenAI.NotFoundError)
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM responses'))[0]!.n), 0)
  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'x', previous_response_id: 'resp_nothing' }), (error: any) => error instanceof OpenAI.NotFoundError && error.param === 'previous_response_id')
  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'x', store: false, background: true }), (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'background')
  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'x', tools: [{ type: 'web_search' }] }), (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'tools[0].type' && /web_search is not configured on this server/.test(error.message))
})

test('the responses.stream() helper: events in order with rising sequence numbers, one id, the terminal event after storing', async (t) => {
  const { client, server } = await openAI(t, { scenario: { tokens: ['one ', 'two ', 'three'] } })
  const stream = client.responses.stream({ model: 'llama3.2', input: 'count' })
  const events: any[] = []
  stream.on('event', (event) => events.push(event))
  const final = await stream.finalResponse()
  assert.equal(final.output_text, 'one two three')
  assert.deepEqual(events.map((event) => event.type), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.delta',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ])
  assert.deepEqual(events.map((event) => event.sequence_number), events.map((_, index) => index))
  assert.equal(new Set(events.filter((event) => event.response).map((event) => event.response.id)).size, 1)
  const stored = (await server.app.responses.store.get(final.id, 'local'))!
  assert.equal(stored.status, 'completed')
  assert.equal(stored.output_text, 'one two three')
})

test('background: returns at once, can be polled, streamed from the start and resumed after N with the same events', async (t) => {
  const tokens = ['a ', 'b ', 'c ', 'd ']
  const { client, fake } = await openAI(t, { scenario: { tokens, paced: true } })
  const queued = await client.responses.create({ model: 'llama3.2', input: 'slowly', background: true })
  assert.equal(queued.status, 'queued')
  assert.equal(queued.background, true)
  fake.release(2)
  // Queued until Ollama has answered (its request reaching the fake is not enough): polled, as a client would.
  let polled = await client.responses.retrieve(queued.id)
  await within(10_000, 'the response to start', (async () => {
    while (polled.status === 'queued') polled = await client.responses.retrieve(queued.id)
  })())
  assert.equal(polled.status, 'in_progress', 'two of four tokens are out: it runs, not done')

  const full: any[] = []
  const resumed: any[] = []
  const fullStream = (async () => {
    for await (const event of await client.responses.retrieve(queued.id, { stream: true })) full.push(event)
  })()
  const resumedStream = (async () => {
    for await (const event of await client.responses.retrieve(queued.id, { stream: true, starting_after: 4 })) resumed.push(event)
  })()
  fake.release(tokens.length)
  await Promise.all([fullStream, resumedStream])
  assert.equal(full.at(-1).type, 'response.completed')
  assert.deepEqual(full.map((event) => event.sequence_number), full.map((_, index) => index))
  assert.deepEqual(resumed, full.slice(5), 'resumed after 4: the same events from 5 on')
  assert.equal(full.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta).join(''), tokens.join(''))
  const done = await client.responses.retrieve(queued.id)
  assert.equal(done.status, 'completed')
  assert.equal(done.output_text, tokens.join(''))
})

test('cancel aborts Ollama\'s request and leaves the response cancelled; a finished one cannot be cancelled', async (t) => {
  const { client, fake } = await openAI(t, { scenario: { tokens: ['x ', 'y '], paced: true } })
  fake.release(1)
  const running = await client.responses.create({ model: 'llama3.2', input: 'stop me', background: true })
  await fake.waitFor(() => fake.chatRequests().length === 1)
  const cancelled = await client.responses.cancel(running.id)
  assert.equal(cancelled.status, 'cancelled')
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
  assert.equal((await client.responses.retrieve(running.id)).status, 'cancelled')
  await assert.rejects(client.responses.cancel(running.id), OpenAI.BadRequestError)
})

test('max_output_tokens becomes num_predict, and a reply cut by it is incomplete', async (t) => {
  const { client, fake } = await openAI(t, { scenario: { tokens: ['cut'], doneReason: 'length' } })
  const response = await client.responses.create({ model: 'llama3.2', input: 'long', max_output_tokens: 16 })
  assert.equal(fake.chatRequests().at(-1)!.body.options.num_predict, 16)
  assert.equal(response.status, 'incomplete')
  assert.deepEqual(response.incomplete_details, { reason: 'max_output_tokens' })
})

test('a finished response streams the same events after a server restart', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['kept ', 'across ', 'restarts'] } })
  const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-resp-')), 'chat.db')
  const env = { OLLAMA_HOST: fake.url, DB_PATH: dbPath }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const before = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const created = await before.responses.create({ model: 'llama3.2', input: 'remember' })
  const live: any[] = []
  for await (const event of await before.responses.retrieve(created.id, { stream: true })) live.push(event)
  first.child.kill('SIGTERM')
  await first.exited

  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const after = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const replayed: any[] = []
  for await (const event of await after.responses.retrieve(created.id, { stream: true, starting_after: 2 })) replayed.push(event)
  assert.deepEqual(replayed, live.slice(3))
  assert.equal((await after.responses.retrieve(created.id)).output_text, 'kept across restarts')
})

test('conversations end to end: create with items, metadata, items added, listed, read, deleted; responses append to it; it is a session', async (t) => {
  const { client, fake, server } = await openAI(t, { scenario: { tokens: ['Noted.'] } })
  const conversation = await client.conversations.create({
    metadata: { topic: 'trip' },
    items: [{ type: 'message', role: 'system', content: 'You plan trips.' }, { type: 'message', role: 'user', content: 'Lisbon in May?' }],
  })
  assert.match(conversation.id, /^conv_[0-9a-f]{32}$/)
  assert.deepEqual(conversation.metadata, { topic: 'trip' })
  const updated = await client.conversations.update(conversation.id, { metadata: { topic: 'trip', year: '2027' } })
  assert.deepEqual((await client.conversations.retrieve(conversation.id)).metadata, updated.metadata)

  const response = await client.responses.create({ model: 'llama3.2', conversation: conversation.id, input: 'Book it.' })
  assert.equal(response.output_text, 'Noted.')
  assert.deepEqual(sentMessages(fake), [['system', 'You plan trips.'], ['user', 'Lisbon in May?'], ['user', 'Book it.']])
  const added = await client.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: 'Thanks!' }] })
  assert.equal(added.data.length, 1)

  const items: any[] = []
  for await (const item of client.conversations.items.list(conversation.id, { order: 'asc' })) items.push(item)
  assert.deepEqual(items.map((item) => [item.role, item.content[0].text]), [
    ['system', 'You plan trips.'], ['user', 'Lisbon in May?'], ['user', 'Book it.'], ['assistant', 'Noted.'], ['user', 'Thanks!'],
  ])
  const newestFirst = await client.conversations.items.list(conversation.id, { limit: 2 })
  assert.deepEqual(newestFirst.data.map((item: any) => item.content[0].text), ['Thanks!', 'Noted.'])
  assert.deepEqual(((await client.conversations.items.retrieve(items[1].id, { conversation_id: conversation.id })) as any).content[0].text, 'Lisbon in May?')
  await client.conversations.items.delete(items[4].id, { conversation_id: conversation.id })
  await assert.rejects(client.conversations.items.retrieve(items[4].id, { conversation_id: conversation.id }), OpenAI.NotFoundError)

  // The same thing, seen as a session.
  const sessionId = [conversation.id.slice(5, 13), conversation.id.slice(13, 17), conversation.id.slice(17, 21), conversation.id.slice(21, 25), conversation.id.slice(25)].join('-')
  const session: any = await (await fetch(`${server.url}/v1/sessions/${sessionId}`)).json()
  assert.equal(session.title, 'Lisbon in May?')
  assert.equal(session.message_count, 4)
  // And the reverse: a session made here is a conversation there.
  const made: any = await (await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'From the page' }) })).json()
  const asConversation = await client.conversations.retrieve(`conv_${made.id.replaceAll('-', '')}`)
  assert.equal(asConversation.object, 'conversation')

  assert.equal((await client.conversations.delete(conversation.id)).deleted, true)
  assert.equal((await fetch(`${server.url}/v1/sessions/${sessionId}`)).status, 404)
  await assert.rejects(client.conversations.retrieve(conversation.id), OpenAI.NotFoundError)
})

test('isolation on every OpenAI route: another user\'s responses and conversations answer exactly as missing ones', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['mine'] } })
  const { url, userWithKey } = await authServer(t, fake, { RATE_LIMIT: '0' })
  const alice = new OpenAI({ baseURL: `${url}/v1`, apiKey: (await userWithKey('alice')).key, maxRetries: 0 })
  const bobKey = (await userWithKey('bob')).key
  const bob = new OpenAI({ baseURL: `${url}/v1`, apiKey: bobKey, maxRetries: 0 })
  const response = await alice.responses.create({ model: 'llama3.2', input: 'alice secret' })
  const conversation = await alice.conversations.create({ items: [{ type: 'message', role: 'user', content: 'alice diary' }] })
  const item = (await alice.conversations.items.list(conversation.id)).data[0]!
  const missingResponse = 'resp_' + '0'.repeat(32)
  const missingConversation = 'conv_' + '0'.repeat(32)
  const probes: Array<[string, string, string, unknown?]> = [
    ['GET', `/responses/${response.id}`, `/responses/${missingResponse}`],
    ['GET', `/responses/${response.id}?stream=true`, `/responses/${missingResponse}?stream=true`],
    ['GET', `/responses/${response.id}/input_items`, `/responses/${missingResponse}/input_items`],
    ['POST', `/responses/${response.id}/cancel`, `/responses/${missingResponse}/cancel`],
    ['DELETE', `/responses/${response.id}`, `/responses/${missingResponse}`],
    ['POST', '/responses', '/responses', { model: 'llama3.2', input: 'x', previous_response_id: response.id }],
    ['POST', '/responses', '/responses', { model: 'llama3.2', input: 'x', conversation: conversation.id }],
    ['GET', `/conversations/${conversation.id}`, `/conversations/${missingConversation}`],
    ['POST', `/conversations/${conversation.id}`, `/conversations/${missingConversation}`, { metadata: { a: 'b' } }],
    ['DELETE', `/conversations/${conversation.id}`, `/conversations/${missingConversation}`],
    ['GET', `/conversations/${conversation.id}/items`, `/conversations/${missingConversation}/items`],
    ['POST', `/conversations/${conversation.id}/items`, `/conversations/${missingConversation}/items`, { items: [{ role: 'user', content: 'planted' }] }],
    ['GET', `/conversations/${conversation.id}/items/${item.id}`, `/conversations/${missingConversation}/items/${item.id}`],
    ['DELETE', `/conversations/${conversation.id}/items/${item.id}`, `/conversations/${missingConversation}/items/${item.id}`],
  ]
  const ask = async (method: string, path: string, body: unknown) => {
    const answer = await fetch(`${url}/v1${path}`, { method, headers: { authorization: `Bearer ${bobKey}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })
    return { status: answer.status, text: await answer.text() }
  }
  for (const [method, theirs, missing, body] of probes) {
    const [a, b] = [await ask(method, theirs, body), await ask(method, missing, body === undefined ? undefined : JSON.parse(JSON.stringify(body).replaceAll(response.id, missingResponse).replaceAll(conversation.id, missingConversation)))]
    assert.equal(a.status, 404, `${method} ${theirs}`)
    const normalise = (text: string) => text.replaceAll(response.id, '<id>').replaceAll(missingResponse, '<id>').replaceAll(conversation.id, '<id>').replaceAll(missingConversation, '<id>')
    assert.equal(normalise(a.text), normalise(b.text), `${method} ${theirs} answers as for a missing id`)
  }
  assert.equal((await alice.responses.retrieve(response.id)).output_text, 'mine', 'alice\'s response is untouched')
  assert.equal((await alice.conversations.items.list(conversation.id)).data.length, 1, 'alice\'s conversation is untouched')
  void bob
})

test('one response at a time in a conversation: a second one while the first runs is 409 ConflictError', async (t) => {
  const { client, fake } = await openAI(t, { scenario: { tokens: ['slow'], paced: true } })
  const conversation = await client.conversations.create({})
  const first = await client.responses.create({ model: 'llama3.2', conversation: conversation.id, input: 'first', background: true })
  await fake.waitFor(() => fake.chatRequests().length === 1)
  await assert.rejects(client.responses.create({ model: 'llama3.2', conversation: conversation.id, input: 'second' }), (error: any) => {
    assert.ok(error instanceof OpenAI.ConflictError)
    assert.equal(error.type, 'conflict_error')
    return true
  })
  fake.release(2)
  const done = await (async () => {
    for await (const event of await client.responses.retrieve(first.id, { stream: true })) if (event.type === 'response.completed') return event
    return undefined
  })()
  assert.equal(done?.response.output_text ?? (done?.response.output[0] as any)?.content[0].text, 'slow')
})

test('Ollama down: a response is a 503 and nothing is kept; a background one is stored failed, for polling to see', async (t) => {
  const server = await testServer(t, null)
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  await assert.rejects(client.responses.create({ model: 'llama3.2', input: 'anyone?' }), (error: any) => error instanceof OpenAI.InternalServerError && error.status === 503)
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM responses'))[0]!.n), 0)
  const queued = await client.responses.create({ model: 'llama3.2', input: 'later', background: true })
  await server.app.responses.registry.get(queued.id)?.settled
  const failed = await client.responses.retrieve(queued.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.error!.message, /unreachable/)
})

test('Ollama failing mid-response: response.failed as the last event, and the partial text stored failed', async (t) => {
  const { client } = await openAI(t, { scenario: { tokens: ['partial ', 'never'], failAfterTokens: 1 } })
  const events: any[] = []
  for await (const event of await client.responses.create({ model: 'llama3.2', input: 'x', stream: true })) events.push(event)
  const last = events.at(-1)
  assert.equal(last.type, 'response.failed')
  assert.match(last.response.error.message, /Ollama failed during the response/)
  const stored = await client.responses.retrieve(last.response.id)
  assert.equal(stored.status, 'failed')
  assert.equal((stored.output[0] as any).content[0].text, 'partial ')
})

test('killed mid-response and restarted: the response is failed with its checkpointed text; SIGTERM past the grace stores it failed too', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a ', 'b ', 'c '], paced: true } })
  const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-resp-')), 'chat.db')
  const env = { OLLAMA_HOST: fake.url, DB_PATH: dbPath, CHECKPOINT_INTERVAL: '20ms', SHUTDOWN_GRACE: '100ms' }
  const storedText = (id: string) => {
    const db = new DatabaseSync(dbPath, { readOnly: true })
    try {
      return String(db.prepare('SELECT output_text FROM responses WHERE id = ?').get(id)?.output_text ?? '')
    } finally {
      db.close()
    }
  }

  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const killed = await new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'local', maxRetries: 0 }).responses.create({ model: 'llama3.2', input: 'x', background: true })
  fake.release(2)
  // The checkpoint, as a reader outside the process sees it.
  await fake.waitFor(() => storedText(killed.id) === 'a b ')
  first.child.kill('SIGKILL')
  await first.exited

  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const client = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'local', maxRetries: 0 })
  const recovered = await client.responses.retrieve(killed.id)
  assert.equal(recovered.status, 'failed')
  assert.equal(recovered.error!.code, 'server_error')
  assert.equal((recovered.output[0] as any).content[0].text, 'a b ')

  const stopped = await client.responses.create({ model: 'llama3.2', input: 'y', background: true })
  await fake.waitFor(() => fake.chatRequests().length === 2)
  second.child.kill('SIGTERM')
  assert.deepEqual(await second.exited, { code: 0, signal: null })
  const db = new DatabaseSync(dbPath, { readOnly: true })
  t.after(() => db.close())
  const row = { ...db.prepare('SELECT status, error FROM responses WHERE id = ?').get(stopped.id) }
  assert.equal(row.status, 'failed')
  assert.match(String(row.error), /shut down/)
  await fake.waitFor(() => fake.chatRequests()[1]!.abortedAt !== null)
})
