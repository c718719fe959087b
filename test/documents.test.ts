/**
 * Documents (docs/documents.md): files uploaded over a socket, read in a worker, cut by structure,
 * embedded by the fake Ollama's /api/embed, and found again by hybrid retrieval; on the suite's
 * backend (SQLite, or PostgreSQL with STORE=postgres).
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { authServer, fakeOllama, json, readSse, STORE, storeEnv, testServer, within } from './support/app.ts'
import { SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'
import { DEFAULT_MODELS, type FakeOllama } from './support/fake-ollama.ts'
import { ingested, makeDocx, makePdf, makeZipBomb, uploadRequest } from './support/documents.ts'

const EMBED = 'nomic-embed-text:latest'

async function documentsServer(t: TestContext, env: Record<string, string> = {}, fake?: FakeOllama) {
  fake ??= await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const server = await testServer(t, fake, env)
  const call = (route: string, body?: unknown) => {
    const [method, path] = route.split(' ') as [string, string]
    return fetch(`${server.url}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) })
  }
  const upload = async (data: Uint8Array | string, filename: string) => {
    const response = await uploadRequest(server.url, data, filename)
    assert.equal(response.status, 200, await response.clone().text())
    return json(response)
  }
  return { fake, server, app: server.app, call, upload }
}

const MARKDOWN = `# Garden guide

Plants need light and water.

## Tomatoes

Tomatoes want full sun, deep watering twice a week, and a stake to climb.

## Roses

Roses are pruned in early spring, just above an outward-facing bud.
`

test('each kind of document is read into chunks that keep their page and headings, embedded, and listed with its progress', async (t) => {
  const { app, call, upload } = await documentsServer(t)
  const markdown = await upload(MARKDOWN, 'garden.md')
  assert.equal(markdown.object, 'file')
  assert.equal(markdown.kind, 'markdown')
  assert.equal(markdown.ingestion.status, 'in_progress')
  const pdf = await upload(makePdf([['Chapter one is about boats.', 'Boats float on water.'], ['Chapter two is about trains.', 'Trains run on rails.']]), 'transport.pdf')
  const docx = await upload(makeDocx(['# Recipes', 'Bread needs flour, water, salt and yeast.', '# Cleaning', 'Vinegar removes limescale from kettles.']), 'house.docx')
  const html = await upload('<!doctype html><html><head><script>globalThis.ran = true</script></head><body><h1>Birds</h1><p>Owls hunt at night.</p><script>document.title = "ran"</script></body></html>', 'birds.html')
  const csv = await upload('name,born\nAda Lovelace,1815\n"Babbage, Charles",1791\n', 'people.csv')

  for (const file of [markdown, pdf, docx, html, csv]) {
    const done = await ingested(app, file.id)
    assert.equal(done.status, 'completed', `${file.filename}: ${done.last_error}`)
    assert.equal(done.chunks_done, done.chunks_total)
    assert.ok(done.chunks_total! > 0)
  }
  const listed = await json(await call('GET /v1/files'))
  assert.deepEqual(listed.data.map((file: any) => file.filename), ['people.csv', 'birds.html', 'house.docx', 'transport.pdf', 'garden.md'])
  assert.equal(listed.data[3].pages, 2)
  assert.equal(listed.data[0].status, 'processed')

  const collection = await json(await call('POST /v1/collections', { name: 'Everything' }))
  for (const file of [markdown, pdf, docx, html, csv]) assert.equal((await call(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })).status, 200)
  const search = async (q: string) => (await json(await call(`GET /v1/collections/${collection.id}/search?q=${encodeURIComponent(q)}`))).results
  const [rose] = await search('when are roses pruned')
  assert.deepEqual([rose.filename, rose.heading, rose.n], ['garden.md', 'Garden guide > Roses', 1])
  const [train] = await search('trains on rails')
  assert.deepEqual([train.filename, train.page], ['transport.pdf', 2])
  const [kettle] = await search('vinegar for limescale')
  assert.deepEqual([kettle.filename, kettle.heading], ['house.docx', 'Cleaning'])
  const [babbage] = await search('when was Babbage born')
  assert.equal(babbage.filename, 'people.csv')
  assert.match(babbage.snippet, /name: Babbage, Charles; born: 1791/)
  // The HTML's text is kept and its scripts are neither run nor kept.
  const [owl] = await search('owls')
  assert.equal(owl.filename, 'birds.html')
  assert.doesNotMatch(JSON.stringify(await search('ran globalThis document title')), /ran = true|document\.title/)
  assert.equal((globalThis as { ran?: boolean }).ran, undefined)
})

test('what is not a document, too large, or not multipart is refused before anything is stored', async (t) => {
  const { app, server, call } = await documentsServer(t, { FILE_MAX_BYTES: '1KiB' })
  const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])
  for (const [data, name, status] of [[png, 'notes.txt', 415], ['x'.repeat(2000), 'big.txt', 413], [new Uint8Array(0), 'empty.txt', 400], [makeZipBomb(10), 'archive.zip', 415]] as const) {
    const response = await uploadRequest(server.url, data, name)
    assert.equal(response.status, status, `${name}: ${await response.clone().text()}`)
    assert.ok((await json(response)).error.message)
  }
  const notMultipart = await call('POST /v1/files', { file: 'x' })
  assert.equal(notMultipart.status, 415)
  assert.deepEqual((await json(await call('GET /v1/files'))).data, [])
  assert.equal((await app.database.documents.listFiles('local', { limit: 10 })).length, 0)
})

test('a hostile file fails alone with a clear last_error: a zip bomb named .docx, a PDF whose page tree is its own child', async (t) => {
  const { app, upload } = await documentsServer(t)
  const bomb = await upload(makeZipBomb(300 * 1024 ** 2), 'bomb.docx')
  const loop = await upload(makePdf([['a'], ['b']], { circular: true }), 'loop.pdf')
  const fine = await upload(MARKDOWN, 'fine.md')
  const failedBomb = await ingested(app, bomb.id)
  assert.equal(failedBomb.status, 'failed')
  assert.match(failedBomb.last_error!, /decompresses to more than/)
  const failedLoop = await ingested(app, loop.id)
  assert.equal(failedLoop.status, 'failed')
  assert.match(failedLoop.last_error!, /PDF|page|pages/i)
  assert.equal((await ingested(app, fine.id)).status, 'completed')
})

test('an EMBED_MODEL that is not installed, or cannot embed, is a 400 at upload that says how to get one, and /health says so', async (t) => {
  const { server, call } = await documentsServer(t, { EMBED_MODEL: 'mxbai-embed-large' })
  // /health lists every host's models first: the upload then knows the model is missing, not unreachable.
  const health = await json(await call('GET /health'))
  assert.deepEqual([health.status, health.embed_model], ['healthy', { name: 'mxbai-embed-large', ready: false, detail: 'mxbai-embed-large is not installed: ollama pull mxbai-embed-large' }])
  const missing = await uploadRequest(server.url, MARKDOWN, 'garden.md')
  assert.equal(missing.status, 400)
  assert.match((await json(missing)).error.message, /ollama pull mxbai-embed-large/)
  const chatModel = await documentsServer(t, { EMBED_MODEL: 'llama3.2' })
  const refused = await uploadRequest(chatModel.server.url, MARKDOWN, 'garden.md')
  assert.equal(refused.status, 400)
  assert.equal((await json(refused)).error.code, 'model_capability')
  assert.equal((await json(await chatModel.call('GET /health'))).embed_model.ready, false)
  const ready = await documentsServer(t)
  assert.deepEqual((await json(await ready.call('GET /health'))).embed_model, { name: 'nomic-embed-text', ready: true, detail: null })
})

test('Ollama failing a batch keeps the file waiting with why; it completes once Ollama answers', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  fake.embedQueue.push({ status: 500, errorMessage: 'llama runner process has terminated' })
  const { app, upload, call } = await documentsServer(t, {}, fake)
  const file = await upload(MARKDOWN, 'garden.md')
  const done = await ingested(app, file.id)
  assert.equal(done.status, 'completed')
  assert.equal(done.last_error, null)
  assert.equal((await json(await call(`GET /v1/files/${file.id}`))).ingestion.chunks_done, done.chunks_total)
})

test('a deleted file goes from lists, collections and retrieval, and its chunks are purged; its content is served as a download only', async (t) => {
  const { app, call, upload } = await documentsServer(t)
  const file = await upload(MARKDOWN, 'garden.md')
  await ingested(app, file.id)
  const content = await call(`GET /v1/files/${file.id}/content`)
  assert.equal(await content.text(), MARKDOWN)
  assert.match(content.headers.get('content-disposition')!, /^attachment; filename\*=UTF-8''garden\.md$/)
  assert.equal(content.headers.get('x-content-type-options'), 'nosniff')
  const collection = await json(await call('POST /v1/collections', { name: 'Garden' }))
  await call(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })
  assert.equal((await json(await call(`GET /v1/collections/${collection.id}/search?q=roses`))).results[0].heading, 'Garden guide > Roses')
  assert.deepEqual(await json(await call(`DELETE /v1/files/${file.id}`)), { id: file.id, object: 'file', deleted: true })
  assert.equal((await call(`GET /v1/files/${file.id}`)).status, 404)
  assert.equal((await call(`DELETE /v1/files/${file.id}`)).status, 404)
  const after = await json(await call(`GET /v1/collections/${collection.id}`))
  assert.deepEqual([after.file_count, after.files], [0, []])
  assert.deepEqual((await json(await call(`GET /v1/collections/${collection.id}/search?q=roses`))).results, [])
  // Purged by the ingestion loop once idle: until then no read can reach them (every read joins files).
  for (let round = 0; round < 50 && (await app.database.documents.purgeDeletedChunks(1000)) > 0; round++);
  assert.equal(await app.database.documents.purgeDeletedChunks(1000), 0)
})

test('collections: create, rename, list with counts, remove a file, delete; bad input is a 400 that changes nothing', async (t) => {
  const { app, call, upload } = await documentsServer(t)
  const file = await upload(MARKDOWN, 'garden.md')
  await ingested(app, file.id)
  const created = await call('POST /v1/collections', { name: '  Garden  ' })
  assert.equal(created.status, 201)
  const collection = await json(created)
  assert.equal(collection.name, 'Garden')
  for (const body of [{}, { name: '' }, { name: 'x'.repeat(201) }, [], { name: 3 }]) assert.equal((await call('POST /v1/collections', body)).status, 400)
  assert.equal((await call(`POST /v1/collections/${collection.id}/files`, { file_id: 'nope' })).status, 404)
  await call(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })
  await call(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })
  assert.equal((await json(await call(`PATCH /v1/collections/${collection.id}`, { name: 'Yard' }))).name, 'Yard')
  assert.deepEqual((await json(await call('GET /v1/collections'))).collections.map((c: any) => [c.name, c.file_count]), [['Yard', 1]])
  assert.equal((await call(`DELETE /v1/collections/${collection.id}/files/${file.id}`)).status, 204)
  assert.equal((await call(`DELETE /v1/collections/${collection.id}/files/${file.id}`)).status, 404)
  assert.equal((await call(`GET /v1/collections/${collection.id}/search?q=`)).status, 400)
  assert.equal((await call(`DELETE /v1/collections/${collection.id}`)).status, 204)
  assert.equal((await call(`GET /v1/collections/${collection.id}`)).status, 404)
  assert.equal((await call(`GET /v1/files/${file.id}`)).status, 200)
})

test('another user\'s files and collections answer exactly as missing ones, on every route', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const { url, app, userWithKey } = await authServer(t, fake)
  const alice = await userWithKey('alice')
  const bob = await userWithKey('bob')
  const upload = await uploadRequest(url, MARKDOWN, 'garden.md', alice.headers)
  const file = await json(upload)
  await ingested(app, file.id, alice.user.id)
  const as = (who: typeof alice) => (route: string, body?: unknown) => {
    const [method, path] = route.split(' ') as [string, string]
    return fetch(`${url}${path}`, { method, headers: { ...who.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  }
  const collection = await json(await as(alice)('POST /v1/collections', { name: 'Mine' }))
  await as(alice)(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })
  const missingFile = '00000000-0000-4000-8000-000000000000'
  const bobsCollection = await json(await as(bob)('POST /v1/collections', { name: 'Bob' }))
  const pairs: Array<[string, string, unknown?]> = [
    [`GET /v1/files/${file.id}`, `GET /v1/files/${missingFile}`],
    [`GET /v1/files/${file.id}/content`, `GET /v1/files/${missingFile}/content`],
    [`DELETE /v1/files/${file.id}`, `DELETE /v1/files/${missingFile}`],
    [`GET /v1/collections/${collection.id}`, `GET /v1/collections/${missingFile}`],
    [`PATCH /v1/collections/${collection.id}`, `PATCH /v1/collections/${missingFile}`, { name: 'x' }],
    [`GET /v1/collections/${collection.id}/search?q=roses`, `GET /v1/collections/${missingFile}/search?q=roses`],
    [`DELETE /v1/collections/${collection.id}/files/${file.id}`, `DELETE /v1/collections/${missingFile}/files/${file.id}`],
    [`DELETE /v1/collections/${collection.id}`, `DELETE /v1/collections/${missingFile}`],
  ]
  for (const [theirs, missing, body] of pairs) {
    const [a, b] = [await as(bob)(theirs, body), await as(bob)(missing, body)]
    assert.equal(a.status, 404, theirs)
    const strip = (problem: any) => ({ ...problem, detail: problem.detail?.replace(/[0-9a-f-]{36}/g, 'ID'), error: problem.error && { ...problem.error, message: problem.error.message.replace(/[0-9a-f-]{36}/g, 'ID') }, instance: undefined, request_id: undefined, timestamp: undefined })
    assert.deepEqual(strip(await json(a)), strip(await json(b)), theirs)
  }
  // Alice's file cannot go in Bob's collection, and Bob's list shows nothing of hers.
  assert.equal((await as(bob)(`POST /v1/collections/${bobsCollection.id}/files`, { file_id: file.id })).status, 404)
  assert.deepEqual((await json(await as(bob)('GET /v1/files'))).data, [])
  assert.equal((await json(await as(alice)(`GET /v1/collections/${collection.id}/search?q=roses`))).results[0].filename, 'garden.md')
})

test('a chat with files answers from numbered sources: the sources event before the first token, stored with the reply, kept by the session', async (t) => {
  const { app, fake, server, call, upload } = await documentsServer(t)
  const file = await upload(MARKDOWN, 'garden.md')
  await ingested(app, file.id)
  const response = await call('POST /v1/chat', { message: 'When are roses pruned?', files: [file.id] })
  assert.equal(response.status, 200)
  const { events } = await readSse(response)
  const types = events.map((event) => event.data.type)
  assert.deepEqual(types.slice(0, 2), ['start', 'sources'])
  assert.ok(types.indexOf('sources') < types.indexOf('token'))
  const [first] = events[1]!.data.sources
  assert.deepEqual([first.n, first.file_id, first.filename, first.heading], [1, file.id, 'garden.md', 'Garden guide > Roses'])
  assert.equal(first.content, undefined)
  // Ollama got the sources as a system message just before the question, with how to cite them.
  const sent = fake.requests.filter((request) => request.path === '/api/chat').at(-1)!.body.messages
  assert.deepEqual(sent.map((message: any) => message.role), ['system', 'user'])
  assert.match(sent[0].content, /cite each source you use by its number in brackets/)
  assert.match(sent[0].content, /\[1\] garden\.md, Garden guide > Roses\nRoses are pruned in early spring/)
  const sessionId = events[0]!.data.session_id
  const { messages } = await json(await call(`GET /v1/sessions/${sessionId}/messages`))
  assert.deepEqual(messages[1].sources, events[1]!.data.sources)
  assert.equal(messages[0].sources, undefined)
  // The session keeps the files: the next turn answers from them without naming them.
  assert.deepEqual((await json(await call(`GET /v1/sessions/${sessionId}`))).files, [file.id])
  const next = await json(await call('POST /v1/chat', { message: 'And tomatoes?', session_id: sessionId, stream: false }))
  assert.equal(next.sources[0].heading, 'Garden guide > Tomatoes')
  // A regeneration answers from them again.
  const regenerated = await json(await call(`POST /v1/sessions/${sessionId}/messages/${next.id}/regenerate`, { stream: false }))
  assert.equal(regenerated.sources[0].heading, 'Garden guide > Tomatoes')
  // PATCH clears them: then no sources.
  assert.deepEqual((await json(await call(`PATCH /v1/sessions/${sessionId}`, { files: [] }))).files, [])
  const plain = await json(await call('POST /v1/chat', { message: 'And roses again?', session_id: sessionId, stream: false }))
  assert.equal(plain.sources, undefined)
  // A retry with the same Idempotency-Key replays the stored reply with its sources where they were.
  const retried = () => fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'roses-1' }, body: JSON.stringify({ message: 'Roses?', files: [file.id] }) })
  const live = (await readSse(await retried())).events
  const replayed = (await readSse(await retried())).events
  assert.deepEqual(replayed.map((event) => [event.id, event.data.type]).slice(0, 2), live.map((event) => [event.id, event.data.type]).slice(0, 2))
  assert.deepEqual(replayed[1]!.data.sources, live[1]!.data.sources)
  assert.equal(replayed.at(-1)!.id, live.at(-1)!.id)
})

test('a chat naming another user\'s file or collection is 404 as a missing one, and stores nothing', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const { url, app, userWithKey } = await authServer(t, fake)
  const alice = await userWithKey('alice')
  const bob = await userWithKey('bob')
  const file = await json(await uploadRequest(url, MARKDOWN, 'garden.md', alice.headers))
  await ingested(app, file.id, alice.user.id)
  const chat = (body: unknown) => fetch(`${url}/v1/chat`, { method: 'POST', headers: { ...bob.headers, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const missing = '00000000-0000-4000-8000-000000000000'
  for (const [theirs, absent] of [[{ files: [file.id] }, { files: [missing] }], [{ collections: [file.id] }, { collections: [missing] }]]) {
    const [a, b] = [await chat({ message: 'hi', ...theirs }), await chat({ message: 'hi', ...absent })]
    assert.equal(a.status, 404)
    const strip = (problem: any) => ({ ...problem, detail: problem.detail.replace(/[0-9a-f-]{36}/g, 'ID'), instance: undefined, request_id: undefined, timestamp: undefined })
    assert.deepEqual(strip(await json(a)), strip(await json(b)))
  }
  const sessions = await json(await fetch(`${url}/v1/sessions`, { headers: bob.headers }))
  assert.deepEqual(sessions.sessions, [])
  const patched = await fetch(`${url}/v1/sessions`, { method: 'POST', headers: { ...bob.headers, 'content-type': 'application/json' }, body: JSON.stringify({ files: [file.id] }) })
  assert.equal(patched.status, 404)
})

test('a server killed while it embeds a file: the next start takes the file up again at once and completes it', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  // The first batch is never answered: the server is killed while it waits.
  fake.embedQueue.push({ headersDelayMs: 3_600_000 })
  const embedding = new Promise<void>((resolve) => (fake.onEmbed = resolve))
  const database = STORE === 'postgres' ? await storeEnv() : { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-ingest-')), 'chat.db') }
  // One name across restarts: its claims are its own to take up again (docs/documents.md).
  const env = { ...database, OLLAMA_HOST: fake.hostPort, INSTANCE_ID: 'ingest-1' }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const file = await json(await uploadRequest(first.url, MARKDOWN, 'garden.md'))
  await within(20_000, 'the first embedding request', embedding)
  first.child.kill('SIGKILL')
  await first.exited
  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const ingestedEntry = await second.logged('document ingested')
  assert.equal(ingestedEntry.file_id, file.id)
  const done = await json(await fetch(`${second.url}/v1/files/${file.id}`))
  assert.deepEqual([done.ingestion.status, done.ingestion.chunks_done], ['completed', done.ingestion.chunks_total])
})

test('per-user limits: files (429) and bytes (413) at upload, chunks fail the file naming the limit; nothing else is stored', async (t) => {
  const { app, server, upload } = await documentsServer(t, { USER_MAX_FILES: '2', USER_MAX_FILE_BYTES: '4KiB', USER_MAX_CHUNKS: '2' })
  const many = await upload(MARKDOWN, 'garden.md')
  const failed = await ingested(app, many.id)
  assert.equal(failed.status, 'failed')
  assert.match(failed.last_error!, /USER_MAX_CHUNKS/)
  const tooBig = await uploadRequest(server.url, 'x'.repeat(4000), 'big.txt')
  assert.equal(tooBig.status, 413)
  assert.match((await json(tooBig)).error.message, /USER_MAX_FILE_BYTES/)
  await upload('A short note.', 'note.txt')
  const third = await uploadRequest(server.url, 'Another note.', 'third.txt')
  assert.equal(third.status, 429)
  assert.match((await json(third)).error.message, /USER_MAX_FILES/)
  assert.deepEqual((await app.database.documents.listFiles('local', { limit: 10 })).map((file) => file.filename), ['note.txt', 'garden.md'])
})

test('after EMBED_MODEL changes, completed files are embedded again in the background by the new model', async (t) => {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED, 'mxbai-embed-large:latest'] })
  const database = STORE === 'postgres' ? await storeEnv() : { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-reembed-')), 'chat.db') }
  const env = { ...database, OLLAMA_HOST: fake.hostPort, INSTANCE_ID: 'reembed-1' }
  const first = await spawnServer(t, SERVER_FROM_SOURCE, { env })
  const file = await json(await uploadRequest(first.url, MARKDOWN, 'garden.md'))
  assert.equal((await first.logged('document ingested')).embed_model, 'nomic-embed-text')
  first.child.kill('SIGTERM')
  await first.exited
  const second = await spawnServer(t, SERVER_FROM_SOURCE, { env: { ...env, EMBED_MODEL: 'mxbai-embed-large' } })
  const again = await second.logged('document ingested')
  assert.deepEqual([again.file_id, again.embed_model], [file.id, 'mxbai-embed-large'])
  const done = await json(await fetch(`${second.url}/v1/files/${file.id}`))
  assert.deepEqual([done.ingestion.status, done.ingestion.embed_model, done.ingestion.chunks_done], ['completed', 'mxbai-embed-large', done.ingestion.chunks_total])
  const embedded = fake.requests.filter((request) => request.path === '/api/embed' && request.body.model === 'mxbai-embed-large')
  assert.ok(embedded.length > 0)
})

test('retrieval for a chat goes on by words alone when Ollama cannot embed the question; sources take at most their share of a small context', async (t) => {
  const { app, fake, call, upload } = await documentsServer(t)
  const file = await upload(MARKDOWN, 'garden.md')
  await ingested(app, file.id)
  // The question's embedding fails (on every try of the pool): the words still find the roses.
  fake.embedQueue.push({ status: 500, errorMessage: 'llama runner process has terminated' })
  const answer = await json(await call('POST /v1/chat', { message: 'When are roses pruned?', files: [file.id], stream: false }))
  assert.equal(answer.sources[0].heading, 'Garden guide > Roses')
  assert.equal(answer.content, 'You said: When are roses pruned?')
  // A context of 400 tokens: the sources keep to 40% of its budget (all three chunks would not), the best first, renumbered.
  const small = await json(await call('POST /v1/chat', { message: 'Tomatoes and roses and plants?', files: [file.id], stream: false, options: { num_ctx: 400 } }))
  assert.ok(small.sources.length >= 1 && small.sources.length < 3, JSON.stringify(small.sources))
  assert.deepEqual(small.sources.map((source: any) => source.n), small.sources.map((_: unknown, index: number) => index + 1))
  const sent = fake.requests.filter((request) => request.path === '/api/chat').at(-1)!.body.messages
  assert.equal(sent.length, 2)
  assert.equal((sent[0].content.match(/^\[\d+\] /gm) ?? []).length, small.sources.length)
})

test('by words alone, a rare word finds its chunk among hundreds that share the common words', async (t) => {
  const { app, fake, call, upload } = await documentsServer(t)
  // 400 sections alike but for their number; one of them also names zinnias.
  const sections = Array.from({ length: 400 }, (_, index) => `## Part ${index}\n\nWater the garden beds in the morning and weed the garden paths${index === 333 ? ' around the zinnias' : ''}.\n`)
  const file = await upload(`# Garden notes\n\n${sections.join('\n')}`, 'notes.md')
  await ingested(app, file.id)
  assert.ok((await json(await call(`GET /v1/files/${file.id}`))).ingestion.chunks_total >= 300)
  const collection = await json(await call('POST /v1/collections', { name: 'Notes' }))
  await call(`POST /v1/collections/${collection.id}/files`, { file_id: file.id })
  // The question's embedding fails: only the full-text ranking answers.
  fake.embedQueue.push({ status: 500, errorMessage: 'llama runner process has terminated' })
  const { results } = await json(await call(`GET /v1/collections/${collection.id}/search?q=${encodeURIComponent('water the garden zinnias')}`))
  assert.equal(results[0].heading, 'Garden notes > Part 333')
})

test('a question Ollama is slow to embed is answered by words once OLLAMA_TIMEOUT passes, not after CHAT_TIMEOUT', async (t) => {
  const { app, fake, call, upload } = await documentsServer(t, { OLLAMA_TIMEOUT: '3s', CHAT_TIMEOUT: '10m' })
  const file = await upload(MARKDOWN, 'garden.md')
  await ingested(app, file.id)
  // The question's embedding never comes (within the test); the chat starts by words alone.
  fake.embedQueue.push({ headersDelayMs: 60_000 })
  const answer = await json(await call('POST /v1/chat', { message: 'When are roses pruned?', files: [file.id], stream: false }))
  assert.equal(answer.sources[0].heading, 'Garden guide > Roses')
  assert.equal(answer.content, 'You said: When are roses pruned?')
})
