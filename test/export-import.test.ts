/**
 * Export and import: a conversation out as JSON (every branch) or Markdown, everything out as JSON
 * Lines, and files in: our export, ChatGPT's conversations.json and Open WebUI's export, each once.
 * On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import importFile from '../functions/import.ts'
import regenerate from '../functions/session-regenerate.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionExport from '../functions/session-export.ts'
import sessionMessages from '../functions/session-messages.ts'
import { authServer, chatRequest, fakeOllama, json, rowCounts, testApp, testServer, toRequest } from './support/app.ts'
import type { AppContext } from '../lib/context.ts'
import { readConversation } from '../lib/conversations/import.ts'
import { MAX_IMPORTS, takeImportSlot } from '../lib/conversations/import-file.ts'

const importing = (app: AppContext, body: unknown, headers: Record<string, string> = {}) => importFile.fetch(toRequest('POST /v1/import', body, headers), app)
const pathOf = async (app: AppContext, sessionId: string, branch = 'active') =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages?branch=${branch}`), app))).messages

/** A ChatGPT conversations.json entry: a hidden system node, a question answered twice, and an edited question; the current node on the second answer. */
function chatGptConversation(id: string) {
  const node = (nodeId: string, parent: string | null, children: string[], message: unknown) => ({ id: nodeId, parent, children, message })
  const text = (role: string, parts: unknown[], time: number, metadata: Record<string, unknown> = {}) => ({
    id: 'm', author: { role }, create_time: time, content: { content_type: 'text', parts }, metadata,
  })
  return {
    id,
    conversation_id: id,
    title: 'Trip to Lisbon',
    create_time: 1_700_000_000,
    update_time: 1_700_000_500,
    current_node: 'a2',
    mapping: {
      root: node('root', null, ['sys'], null),
      sys: node('sys', 'root', ['q1', 'q1b'], text('system', [''], 1_700_000_001, { is_visually_hidden_from_conversation: true })),
      q1: node('q1', 'sys', ['a1', 'a2'], text('user', ['Where to eat in Lisbon?'], 1_700_000_010)),
      a1: node('a1', 'q1', [], text('assistant', ['Try Alfama.'], 1_700_000_020, { model_slug: 'gpt-4o' })),
      a2: node('a2', 'q1', [], text('assistant', ['Try Bairro Alto.', { content_type: 'image_asset_pointer' }], 1_700_000_030, { model_slug: 'gpt-4o' })),
      q1b: node('q1b', 'sys', ['a3'], text('user', ['Where to sleep in Lisbon?'], 1_700_000_040)),
      a3: node('a3', 'q1b', [], text('assistant', ['Near the river.'], 1_700_000_050, { model_slug: 'gpt-4o-mini' })),
    },
  }
}

test('export and import round trip: every branch and the active path come back, as a new session; importing it again is a duplicate, and again after deleting the copy it imports', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', system: 'Be brief.', stream: false }), app))
  const sessionId = first.session_id
  await json(await chat.fetch(chatRequest({ message: 'Q2', session_id: sessionId, stream: false }), app))
  fake.scenario = { tokens: ['Another ', 'answer'] }
  await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${sessionId}/messages/${first.id}/regenerate`, { stream: false }), app))

  const response = await sessionExport.fetch(toRequest(`GET /v1/sessions/${sessionId}/export`), app)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type')!, /^application\/json/)
  assert.match(response.headers.get('content-disposition')!, /^attachment; filename="Q1\.json"/)
  const exported = await json(response)
  assert.equal(exported.format, 'chat-ollama.conversation')
  assert.equal(exported.version, 1)
  assert.equal(exported.session.id, sessionId)
  assert.equal(exported.messages.length, 6, 'every branch: the system prompt, two turns and a second reply')
  assert.deepEqual(Object.keys(exported.messages[0]).sort(), ['content', 'created_at', 'id', 'model', 'parent_id', 'role', 'status', 'tokens_used'])
  assert.equal(exported.current_message_id, (await pathOf(app, sessionId)).at(-1).id)

  // Its own export, while the session is here: nothing to add.
  assert.deepEqual(await json(await importing(app, exported)), { imported: [], updated: [], skipped: [{ index: 0, reason: 'duplicate' }] })
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${sessionId}`), app)).status, 204)
  const result = await json(await importing(app, [exported]))
  assert.equal(result.imported.length, 1)
  assert.deepEqual(result.skipped, [])
  const copy = result.imported[0]
  assert.notEqual(copy.session_id, sessionId)
  assert.deepEqual({ title: copy.title, messages: copy.messages }, { title: 'Q1', messages: 6 })
  assert.deepEqual((await pathOf(app, copy.session_id)).map((message: any) => message.content), ['Be brief.', 'Q1', 'Another answer'])
  assert.deepEqual((await pathOf(app, copy.session_id, 'all')).map((message: any) => [message.role, message.content]), exported.messages.map((message: any) => [message.role, message.content]))
  const [, question, retried] = await pathOf(app, copy.session_id)
  assert.equal(retried.sibling_ids.length, 2, 'the first answer is kept as a sibling')
  assert.equal(retried.parent_id, question.id)

  assert.deepEqual(await json(await importing(app, [exported])), { imported: [], updated: [], skipped: [{ index: 0, reason: 'duplicate' }] }, 'importing the same file again adds nothing')
  await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${copy.session_id}`), app)
  assert.equal((await json(await importing(app, [exported]))).imported.length, 1, 'once the copy is deleted, the file imports again')

})

test('Markdown export: the active path, each message under a heading naming who said it', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Why is the sky blue?', stream: false }), app))
  const response = await sessionExport.fetch(toRequest(`GET /v1/sessions/${first.session_id}/export?format=markdown`), app)
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type')!, /^text\/markdown/)
  assert.match(response.headers.get('content-disposition')!, /filename="Why-is-the-sky-blue\.md"; filename\*=UTF-8''Why%20is%20the%20sky%20blue%3F\.md/)
  assert.equal(await response.text(), '# Why is the sky blue?\n\n## User\n\nWhy is the sky blue?\n\n## Assistant (llama3.2)\n\nYou said: Why is the sky blue?\n')
  assert.equal((await sessionExport.fetch(toRequest(`GET /v1/sessions/${first.session_id}/export?format=pdf`), app)).status, 400)
})

test('a ChatGPT conversations.json with a branch: the current node\'s path is active, the other branches kept, hidden and empty nodes skipped, times and models kept', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const result = await json(await importing(app, [chatGptConversation('c-1')]))
  assert.equal(result.imported.length, 1)
  const { session_id: sessionId, title, messages } = result.imported[0]
  assert.deepEqual({ title, messages }, { title: 'Trip to Lisbon', messages: 5 })
  const path = await pathOf(app, sessionId)
  assert.deepEqual(path.map((message: any) => message.content), ['Where to eat in Lisbon?', 'Try Bairro Alto.\n[image not included in the export]'])
  assert.equal(path[0].parent_id, null, 'the hidden system node is skipped; its children become first messages')
  assert.equal(path[0].sibling_ids.length, 2, 'the edited question is a sibling')
  assert.equal(path[1].sibling_ids.length, 2, 'the other answer is a sibling')
  assert.equal(path[1].model, 'gpt-4o')
  assert.equal(path[0].created_at, new Date(1_700_000_010_000).toISOString())
  const all = await pathOf(app, sessionId, 'all')
  assert.deepEqual(all.map((message: any) => message.content).sort(), ['Near the river.', 'Try Alfama.', 'Try Bairro Alto.\n[image not included in the export]', 'Where to eat in Lisbon?', 'Where to sleep in Lisbon?'])

  // Only the active path goes to the model.
  await json(await chat.fetch(chatRequest({ message: 'And for dessert?', session_id: sessionId, stream: false }), app))
  assert.deepEqual(fake.chatRequests().at(-1)!.body.messages.map((message: any) => message.content), ['Where to eat in Lisbon?', 'Try Bairro Alto.\n[image not included in the export]', 'And for dessert?'])
  assert.deepEqual((await json(await importing(app, [chatGptConversation('c-1')]))).skipped, [{ index: 0, reason: 'duplicate' }])
})

test('an Open WebUI export: history.messages with parentId and currentId', async (t) => {
  const app = await testApp(t, null)
  const webUi = [{
    id: 'owui-1',
    title: 'Regex help',
    created_at: 1_710_000_000,
    updated_at: 1_710_000_100,
    chat: {
      title: 'Regex help',
      history: {
        currentId: 'b',
        messages: {
          q: { id: 'q', parentId: null, childrenIds: ['a', 'b'], role: 'user', content: 'Match an email?', timestamp: 1_710_000_001 },
          a: { id: 'a', parentId: 'q', childrenIds: [], role: 'assistant', content: 'Use a library.', model: 'llama3.1:8b', timestamp: 1_710_000_002 },
          b: { id: 'b', parentId: 'q', childrenIds: [], role: 'assistant', content: 'Try ^\\S+@\\S+$', model: 'qwen3:8b', timestamp: 1_710_000_003 },
        },
      },
    },
  }]
  const result = await json(await importing(app, webUi))
  assert.deepEqual(result.skipped, [])
  const path = await pathOf(app, result.imported[0].session_id)
  assert.deepEqual(path.map((message: any) => [message.role, message.content, message.model ?? null]), [['user', 'Match an email?', null], ['assistant', 'Try ^\\S+@\\S+$', 'qwen3:8b']])
  assert.deepEqual((await json(await importing(app, webUi))).skipped, [{ index: 0, reason: 'duplicate' }])
})

test('bad files change nothing: not JSON, not an export, an empty body are 400; unreadable entries are skipped with their reason beside the good ones', async (t) => {
  const app = await testApp(t, null)
  const raw = (body: string) => importFile.fetch(new Request('http://localhost/v1/import', { method: 'POST', headers: { 'content-type': 'application/json' }, body }), app)
  for (const body of ['{"mapping": ', '42', '"text"', '{"foo": 1}', '[{"foo": 1}]', '']) {
    const response = await raw(body)
    assert.equal(response.status, 400, body)
    assert.match((await json(response)).type, /validation$/)
  }
  let deep: unknown = 'bottom'
  for (let level = 0; level < 100; level++) deep = [deep]
  const result = await json(await importing(app, [
    { foo: 1 },
    { ...chatGptConversation('nul'), title: 'a\u0000b' },
    { ...chatGptConversation('deep'), extra: deep },
    { format: 'chat-ollama.conversation', version: { v: 'x'.repeat(5000) }, messages: [] },
    { ...chatGptConversation('empty'), mapping: { root: { id: 'root', parent: null, children: [], message: null } } },
    chatGptConversation('good'),
  ]))
  assert.equal(result.imported.length, 1)
  assert.deepEqual(result.skipped.map((skip: any) => skip.index), [0, 1, 2, 3, 4])
  assert.match(result.skipped[1].reason, /U\+0000/)
  assert.match(result.skipped[2].reason, /nested deeper than 64/)
  assert.match(result.skipped[3].reason, /^version \{"v":"x+ of chat-ollama\.conversation is not known$/)
  assert.ok(result.skipped[3].reason.length < 100, 'a reason quotes the file briefly')
  assert.match(result.skipped[4].reason, /no message with text/)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 5 })
  assert.deepEqual(await json(await importing(app, [])), { imported: [], updated: [], skipped: [] })
})

test('imported texts are bounded: a user message over MAX_MESSAGE_CHARS or a reply over 1,000,000 characters skips its conversation, naming why', async (t) => {
  const app = await testApp(t, null, { MAX_MESSAGE_CHARS: '100', IMPORT_MAX_BYTES: '4MiB' })
  const withText = (id: string, node: 'q1' | 'a2', text: string) => {
    const conversation = chatGptConversation(id)
    ;(conversation.mapping[node].message as any).content.parts = [text]
    return conversation
  }
  const result = await json(await importing(app, [withText('long-question', 'q1', 'q'.repeat(101)), withText('long-reply', 'a2', 'r'.repeat(1_000_001)), withText('fits', 'a2', 'r'.repeat(1_000_000))]))
  assert.deepEqual(result.skipped.map((skip: any) => [skip.index, skip.reason]), [
    [0, 'a message of role user has 101 characters, more than MAX_MESSAGE_CHARS (100)'],
    [1, 'a message of role assistant has 1000001 characters, more than the limit for an imported reply (1000000)'],
  ])
  assert.equal(result.imported.length, 1)
  assert.deepEqual(await rowCounts(app), { sessions: 1, messages: 5 })
})

test('a cycle in a file\'s parents does not hang the import: the loop is broken and every message kept', async (t) => {
  const app = await testApp(t, null)
  const conversation = chatGptConversation('loop')
  conversation.mapping.q1.parent = 'a1'
  conversation.mapping.a1.parent = 'q1'
  conversation.current_node = 'a1'
  const result = await json(await importing(app, [conversation]))
  assert.equal(result.imported[0].messages, 5)
  const path = await pathOf(app, result.imported[0].session_id)
  assert.deepEqual(path.map((message: any) => message.content), ['Where to eat in Lisbon?', 'Try Alfama.'])
})

test('GET /v1/export: every own conversation as JSON Lines, oldest first, each a file POST /v1/import reads', async (t) => {
  const fake = await fakeOllama(t)
  const server = await authServer(t, fake)
  const [alice, bob] = [await server.userWithKey('alice'), await server.userWithKey('bob')]
  const send = (path: string, body: unknown, headers: Record<string, string>, method = 'POST') =>
    fetch(`${server.url}${path}`, { method, headers: { ...headers, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const sessions: string[] = []
  for (const message of ['one', 'two', 'three']) sessions.push((await json(await send('/v1/chat', { message, stream: false }, alice.headers))).session_id)
  await send('/v1/chat', { message: 'bob\'s', stream: false }, bob.headers)
  const response = await fetch(`${server.url}/v1/export`, { headers: alice.headers })
  assert.equal(response.status, 200)
  assert.match(response.headers.get('content-type')!, /^application\/x-ndjson/)
  assert.match(response.headers.get('content-disposition')!, /^attachment/)
  const lines = (await response.text()).split('\n')
  assert.equal(lines.pop(), '', 'each line ends with a newline')
  const exports = lines.map((line) => JSON.parse(line))
  assert.deepEqual(exports.map((item) => item.session.id), sessions, 'alice\'s only, oldest first')
  assert.deepEqual(exports.map((item) => item.messages.length), [2, 2, 2])

  // Into bob's account: three new sessions of his; alice's stay hers.
  const result = await json(await send('/v1/import', exports, bob.headers))
  assert.equal(result.imported.length, 3)
  assert.equal((await json(await fetch(`${server.url}/v1/sessions`, { headers: bob.headers }))).sessions.length, 4)

  // Someone else's session exports exactly like a missing one.
  const theirs = await fetch(`${server.url}/v1/sessions/${sessions[0]}/export`, { headers: bob.headers })
  const missing = await fetch(`${server.url}/v1/sessions/00000000-0000-4000-8000-000000000000/export`, { headers: bob.headers })
  assert.equal(theirs.status, 404)
  assert.equal((await json(theirs)).detail.replace(sessions[0]!, 'X'), (await json(missing)).detail.replace('00000000-0000-4000-8000-000000000000', 'X'))
  assert.equal((await fetch(`${server.url}/v1/export`)).status, 401)
})

test('over sockets: /v1/import takes bodies up to IMPORT_MAX_BYTES, above MAX_BODY_BYTES, which every other route keeps; one more byte is 413; an Idempotency-Key gives a retry the first answer', async (t) => {
  const { url } = await testServer(t, null, { MAX_BODY_BYTES: '2KiB', IMPORT_MAX_BYTES: '64KiB' })
  const conversation = { ...chatGptConversation('big'), padding: 'x'.repeat(20_000) }
  const body = JSON.stringify([conversation])
  const post = (path: string, text: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text })
  const first = await post('/v1/import', body, { 'idempotency-key': 'import-1' })
  assert.equal(first.status, 200)
  const answer = await json(first)
  assert.equal(answer.imported.length, 1)
  assert.deepEqual(await json(await post('/v1/import', body, { 'idempotency-key': 'import-1' })), answer, 'the retry gets the first answer, not "duplicate"')
  assert.equal((await post('/v1/sessions', JSON.stringify({ title: 'x'.repeat(20_000) }))).status, 413, 'other routes keep MAX_BODY_BYTES')
  const over = await post('/v1/import', JSON.stringify([{ ...conversation, padding: 'x'.repeat(70_000) }]))
  assert.equal(over.status, 413)
})

test('an import the server did not finish is seen nowhere, and the next start removes it', async (t) => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-import-')), 'chat.db')
  const first = await testServer(t, null, { DB_PATH: dbPath })
  const conversation = readConversation(chatGptConversation('half'), { maxMessageChars: 32_000 })
  // What a server stopped half-way through a big conversation leaves: its session and a first chunk.
  const start = await first.app.store.beginImport('local', conversation)
  assert.ok('sessionId' in start)
  const { sessionId } = start
  await first.app.store.addImportedMessages(sessionId, conversation.messages.slice(0, 2))
  assert.deepEqual((await json(await fetch(`${first.url}/v1/sessions`))).sessions, [])
  assert.deepEqual((await json(await fetch(`${first.url}/v1/search?q=lisbon`))).results, [])
  assert.equal((await fetch(`${first.url}/v1/sessions/${sessionId}`)).status, 404)
  await first.shutdown()

  const second = await testServer(t, null, { DB_PATH: dbPath, ...(first.app.config.databaseUrl ? { DATABASE_URL: first.app.config.databaseUrl } : {}) })
  assert.deepEqual(await rowCounts(second.app), { sessions: 0, messages: 0 })
  // And the same conversation imports whole.
  const result = await json(await fetch(`${second.url}/v1/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([chatGptConversation('half')]) }))
  assert.equal(result.imported[0].messages, 5)
})

test('imports are bounded: one at a time per user (429 with Retry-After while one runs), the slot given back however the import ends', async (t) => {
  const { url, app } = await testServer(t, null)
  const importing = (body = '[]') => fetch(`${url}/v1/import`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  // Refused before its body is read, whatever it holds.
  const giveBack = takeImportSlot(app, 'local')
  const refused = await importing()
  assert.equal(refused.status, 429)
  assert.equal(refused.headers.get('retry-after'), '5')
  assert.match((await json(refused)).detail, /One of your imports is still running/)
  giveBack()
  // Each import gives its slot back, a refused file's too: the next one runs.
  assert.equal((await importing('{"not": "an export"}')).status, 400)
  assert.equal((await importing()).status, 200)
  assert.equal((await importing()).status, 200)
})

test(`at most ${MAX_IMPORTS} imports run on an instance at once: another user then gets 429 too`, async (t) => {
  const server = await authServer(t, null)
  const users = [await server.userWithKey('alice'), await server.userWithKey('bob'), await server.userWithKey('carol')]
  const importing = (headers: Record<string, string>) => fetch(`${server.url}/v1/import`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '[]' })
  const giveBack = users.slice(0, MAX_IMPORTS).map(({ user }) => takeImportSlot(server.app, user.id))
  const refused = await importing(users[MAX_IMPORTS]!.headers)
  assert.equal(refused.status, 429)
  assert.match((await json(refused)).detail, /imports are running on this server/)
  giveBack[0]!()
  assert.equal((await importing(users[MAX_IMPORTS]!.headers)).status, 200)
})
