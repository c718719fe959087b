import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { LOCAL_USER_ID } from '../lib/store/chat-store.ts'
import chat from '../functions/chat.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionGet from '../functions/session-get.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionUpdate from '../functions/session-update.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import sessionsList from '../functions/sessions-list.ts'
import { encodeCursor } from '../lib/http/cursor.ts'
import { chatRequest, fakeOllama, json, readSse, rowCounts, sqliteChats, sqliteDb, sqliteOnly, storedRows, testApp, testServer, toRequest } from './support/app.ts'
import type { AppContext } from '../lib/context.ts'

const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/

test('create: 201 with the session and its Location; title and system prompt optional', async (t) => {
  const app = await testApp(t, null)
  const plain = await sessionsCreate.fetch(toRequest('POST /v1/sessions'), app)
  assert.equal(plain.status, 201)
  const session = await json(plain)
  assert.deepEqual(Object.keys(session).sort(), ['archived', 'collections', 'created_at', 'current_message_id', 'files', 'folder', 'id', 'message_count', 'model', 'options', 'pinned', 'system', 'think', 'title', 'updated_at'])
  assert.equal(session.title, 'New Chat')
  assert.equal(session.message_count, 0)
  assert.match(session.created_at, TIME)
  assert.equal(plain.headers.get('location'), `/v1/sessions/${session.id}`)

  const titled = await json(await sessionsCreate.fetch(toRequest('POST /v1/sessions', { title: '  Trip plans ', system: 'You are a travel agent.' }), app))
  assert.equal(titled.title, 'Trip plans')
  assert.equal(titled.message_count, 1)
  assert.deepEqual((await app.store.history(titled.id)).messages.map(({ role, content }) => ({ role, content })), [{ role: 'system', content: 'You are a travel agent.' }])
})

test('create refuses bad bodies with 400 and stores nothing', async (t) => {
  const app = await testApp(t, null)
  for (const body of [{ title: '' }, { title: '   ' }, { title: 'x'.repeat(201) }, { title: 5 }, { system: false }, { name: 'x' }, [1]]) {
    const response = await sessionsCreate.fetch(toRequest('POST /v1/sessions', body), app)
    assert.equal(response.status, 400, JSON.stringify(body))
  }
  assert.equal((await sessionsCreate.fetch(toRequest('POST /v1/sessions', 'title=x', { 'content-type': 'text/plain' }), app)).status, 415)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
})

test('get: the session with its message count; 404 when absent; 400 for an id that is not a UUID', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'hello' }), app))
  const id = events[0]!.data.session_id
  const found = await sessionGet.fetch(toRequest(`GET /v1/sessions/${id.toUpperCase()}`), app)
  assert.equal(found.status, 200)
  const session = await json(found)
  assert.equal(session.id, id)
  assert.equal(session.message_count, 2)
  assert.equal(session.title, 'hello')

  const missing = await sessionGet.fetch(toRequest(`GET /v1/sessions/${randomUUID()}`), app)
  assert.equal(missing.status, 404)
  assert.equal((await json(missing)).type, 'https://api.chat-ollama.com/errors/not_found')
  const bad = await sessionGet.fetch(toRequest('GET /v1/sessions/12345'), app)
  assert.equal(bad.status, 400)
  assert.deepEqual((await json(bad)).errors, [{ path: 'id', message: 'must be a UUID' }])
})

test('rename: trimmed title, newer updated_at; 404, 400 and 415 change nothing', async (t) => {
  const app = await testApp(t, null)
  const created = await app.store.createSession()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const renamed = await sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${created.id}`, { title: '  Renamed  ' }), app)
  assert.equal(renamed.status, 200)
  const session = await json(renamed)
  assert.equal(session.title, 'Renamed')
  assert.ok(session.updated_at > created.updated_at)

  assert.equal((await sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${randomUUID()}`, { title: 'x' }), app)).status, 404)
  for (const body of [{}, { title: '' }, { title: 'x'.repeat(201) }, { title: 'ok', extra: 1 }]) {
    assert.equal((await sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${created.id}`, body), app)).status, 400, JSON.stringify(body))
  }
  assert.equal((await sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${created.id}`, 'title', { 'content-type': 'text/plain' }), app)).status, 415)
  assert.equal((await sessionUpdate.fetch(toRequest(`PATCH /v1/sessions/${created.id}`), app)).status, 400)
  assert.equal((await app.store.getSession(created.id, LOCAL_USER_ID))?.title, 'Renamed')
})

test('delete: 204 and the messages go too; 404 after; 409 while a reply runs', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b'], stallAfterTokens: 1 } })
  const app = await testApp(t, fake)
  const done = await app.store.createSession({ system: 'x' })
  await app.store.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: done.id, content: 'hi' })
  const deleted = await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${done.id}`), app)
  assert.equal(deleted.status, 204)
  assert.equal(await deleted.text(), '')
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${done.id}`), app)).status, 404)

  const running = await chat.fetch(chatRequest({ message: 'long reply' }), app)
  const sessionId = (await app.store.listSessions(LOCAL_USER_ID, 1, null)).items[0]!.id
  const conflict = await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${sessionId}`), app)
  assert.equal(conflict.status, 409)
  assert.equal((await app.store.getSession(sessionId, LOCAL_USER_ID))?.message_count, 2)
  await app.generations.cancel(sessionId)
  await readSse(running)
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${sessionId}`), app)).status, 204)
})

test('the session list walks 1,000 sessions newest first, with inserts between pages, without a repeat or a gap', async (t) => {
  const app = await testApp(t, null)
  const original = new Set<string>()
  for (let index = 0; index < 1000; index++) original.add((await app.store.createSession()).id)
  const seen: string[] = []
  let cursor: string | null = null
  let previous: { updated_at: string; id: string } | undefined
  do {
    const query: string = cursor ? `?limit=37&cursor=${cursor}` : '?limit=37'
    const response = await sessionsList.fetch(toRequest(`GET /v1/sessions${query}`), app)
    assert.equal(response.status, 200)
    const page: { sessions: Array<{ id: string; updated_at: string; message_count: number }>; next_cursor: string | null } = await json(response)
    assert.ok(page.sessions.length <= 37)
    for (const session of page.sessions) {
      if (previous) {
        assert.ok(session.updated_at < previous.updated_at || (session.updated_at === previous.updated_at && session.id < previous.id), 'out of order')
      }
      previous = session
      seen.push(session.id)
    }
    // New sessions arrive while the client pages; they belong before the first page, not in the walk.
    await app.store.createSession()
    cursor = page.next_cursor
  } while (cursor)
  assert.equal(new Set(seen).size, seen.length, 'a session was listed twice')
  for (const id of original) assert.ok(seen.includes(id), `session ${id} was skipped`)
})

/** Walks every page of GET /v1/sessions with `query`, running `between` after each page. */
async function walkSessions(app: Parameters<typeof sessionsList.fetch>[1], query: string, between: () => void | Promise<void>): Promise<string[]> {
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const response = await sessionsList.fetch(toRequest(`GET /v1/sessions?limit=10${query}${cursor ? `&cursor=${cursor}` : ''}`), app)
    assert.equal(response.status, 200)
    const page: { sessions: Array<{ id: string }>; next_cursor: string | null } = await json(response)
    seen.push(...page.sessions.map((session) => session.id))
    await between()
    cursor = page.next_cursor
  } while (cursor)
  return seen
}

/** Sessions created and last updated a second apart in 2020, oldest first, so the orders are certain. */
async function seedSessions(app: AppContext, count: number): Promise<string[]> {
  const ids: string[] = []
  for (let index = 0; index < count; index++) {
    const id = randomUUID()
    const at = new Date(Date.UTC(2020, 0, 1) + index * 1000).toISOString()
    await storedRows(app, 'INSERT INTO sessions (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)', id, `seeded ${index}`, at, at)
    ids.push(id)
  }
  return ids
}

test('order=updated is live: a session updated while a client pages jumps ahead of its cursor and that walk misses it', async (t) => {
  const app = await testApp(t, null)
  const ids = await seedSessions(app, 30)
  // The least recently updated session, still ahead of the walk, is renamed after the first page.
  let renamed = false
  const seen = await walkSessions(app, '', async () => {
    if (!renamed) await app.store.updateSession(ids[0]!, LOCAL_USER_ID, { title: 'touched' })
    renamed = true
  })
  assert.ok(!seen.includes(ids[0]!), 'as docs/api.md says, the updated session moved ahead of the cursor')
  assert.deepEqual(seen, ids.slice(1).reverse())
})

test('order=created walks every session exactly once, oldest first, while sessions are updated and created between pages', async (t) => {
  const app = await testApp(t, null)
  const ids = await seedSessions(app, 95)
  let page = 0
  const seen = await walkSessions(app, '&order=created', async () => {
    await app.store.updateSession(ids[(page * 7) % 95]!, LOCAL_USER_ID, { title: `touched ${page}` })
    await app.store.updateSession(ids[94 - page]!, LOCAL_USER_ID, { title: `touched again ${page}` })
    await app.store.createSession()
    page++
  })
  assert.equal(new Set(seen).size, seen.length, 'a session was listed twice')
  assert.deepEqual(seen.slice(0, 95), ids, 'every existing session, in creation order')
  assert.ok(seen.length > 95, 'sessions created during the walk come after, at its end')
  const mixed = await sessionsList.fetch(toRequest(`GET /v1/sessions?order=created&cursor=${encodeCursor([new Date().toISOString(), randomUUID()])}`), app)
  assert.equal(mixed.status, 400, 'a cursor of the other order is refused')
  assert.equal((await sessionsList.fetch(toRequest('GET /v1/sessions?order=title'), app)).status, 400)
})

test('the message list walks 1,000 messages oldest first, with messages arriving between pages, without a repeat or a gap', async (t) => {
  const app = await testApp(t, null)
  const session = await app.store.createSession()
  for (let index = 0; index < 1000; index++) await app.store.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: session.id, content: `m${index}` })
  const seen: string[] = []
  let cursor: string | null = null
  let arrived = 0
  do {
    const query: string = cursor ? `?limit=101&cursor=${cursor}` : '?limit=101'
    const response = await sessionMessages.fetch(toRequest(`GET /v1/sessions/${session.id}/messages${query}`), app)
    assert.equal(response.status, 200)
    const page: { session_id: string; messages: Array<{ content: string }>; next_cursor: string | null } = await json(response)
    assert.equal(page.session_id, session.id)
    seen.push(...page.messages.map((message) => message.content))
    if (arrived < 5) await app.store.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: session.id, content: `m${1000 + arrived++}` })
    cursor = page.next_cursor
  } while (cursor)
  assert.deepEqual(seen, Array.from({ length: 1000 + arrived }, (_, index) => `m${index}`))
})

test('messages carry model, tokens_used, their figures and status where they apply', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'hi', system: 'be kind' }), app))
  const id = events[0]!.data.session_id
  const body = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${id}/messages`), app))
  assert.equal(body.next_cursor, null)
  const [system, user, assistant] = body.messages
  assert.deepEqual(Object.keys(system).sort(), ['content', 'created_at', 'id', 'images', 'parent_id', 'role', 'sibling_ids', 'status'])
  assert.equal(user.role, 'user')
  assert.deepEqual({ ...assistant, id: undefined, created_at: undefined }, {
    id: undefined, created_at: undefined, role: 'assistant', content: 'You said: hi', model: 'llama3.2', tokens_used: 4, status: 'complete',
    prompt_tokens: assistant.prompt_tokens, completion_tokens: 4, done_reason: 'stop', tokens_per_second: Math.round((4 / 4.535599) * 10) / 10,
    parent_id: user.id, sibling_ids: [assistant.id], images: [],
  })
  assert.match(assistant.created_at, TIME)
})

test('bad limits and cursors are 400 validation problems; an absent session 404', async (t) => {
  const app = await testApp(t, null)
  const session = await app.store.createSession()
  const sessionsCases = ['limit=0', 'limit=201', 'limit=ten', 'limit=1&limit=2', 'cursor=bogus', `cursor=${encodeCursor(['not a time', randomUUID()])}`, 'cursor=a%20b']
  for (const query of sessionsCases) {
    const response = await sessionsList.fetch(toRequest(`GET /v1/sessions?${query}`), app)
    assert.equal(response.status, 400, query)
    assert.equal((await json(response)).type, 'https://api.chat-ollama.com/errors/validation')
  }
  assert.equal((await sessionsList.fetch(toRequest('GET /v1/sessions?limit=200'), app)).status, 200)
  for (const query of ['limit=501', 'limit=-1', `cursor=${encodeCursor([new Date().toISOString(), 'x'])}`]) {
    assert.equal((await sessionMessages.fetch(toRequest(`GET /v1/sessions/${session.id}/messages?${query}`), app)).status, 400, query)
  }
  assert.equal((await sessionMessages.fetch(toRequest(`GET /v1/sessions/${session.id}/messages?limit=500`), app)).status, 200)
  assert.equal((await sessionMessages.fetch(toRequest(`GET /v1/sessions/${randomUUID()}/messages`), app)).status, 404)
  assert.equal((await sessionMessages.fetch(toRequest('GET /v1/sessions/nope/messages'), app)).status, 400)
})

test('every list and lookup query uses an index: no table scan, no sort', sqliteOnly('reads SQLite\'s query plans; PostgreSQL\'s indexes are in migrations/postgres/'), async (t) => {
  const app = await testApp(t, null)
  const { statements } = sqliteChats(app)
  const plan = (name: keyof typeof statements) => {
    const sql = statements[name].sourceSQL
    // Plain ? each count; numbered ?N count up to the highest N.
    const numbered = [...sql.matchAll(/\?(\d+)/g)].map((match) => Number(match[1]))
    const params = new Array(numbered.length ? Math.max(...numbered) : (sql.match(/\?/g) ?? []).length).fill(null)
    return sqliteDb(app).prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((row) => String(row.detail)).join(' | ')
  }
  // A path (history, a branch switch) is followed message by message through the primary key;
  // only its own rows are then sorted.
  // The few replies the approval sweep finds are made distinct in a temporary tree.
  const followsPath = ['history', 'leafBelow', 'answeredReplies']
  const approvals = ['pendingApprovals', 'answeredReplies', 'nextApprovalExpiry', 'expireApprovals', 'approvalOf', 'undecidedOf', 'approvalsOf', 'streamingReplyPlace', 'pausedReply'] as const
  for (const name of ['listSessionsFirst', 'listSessionsAfter', 'listSessionsByCreationFirst', 'listSessionsByCreationAfter', 'listMessagesFirst', 'listMessagesAfter', 'listMessagesLast', 'listMessagesBefore', 'sessionHost', 'history', 'childrenOf', 'leafBelow', 'getSession', 'getMessage', 'hasRole', 'interruptStreaming', ...approvals] as const) {
    const detail = plan(name)
    assert.doesNotMatch(detail, /SCAN (sessions|messages|tool_approvals|a|m|p)\b(?! USING)/, `${name}: ${detail}`)
    if (!followsPath.includes(name)) assert.doesNotMatch(detail, /TEMP B-TREE/, `${name}: ${detail}`)
    assert.match(detail, /USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY|PRIMARY KEY/, `${name}: ${detail}`)
  }
})

test('over real sockets: create, list, read, rename, page messages, delete', async (t) => {
  const fake = await fakeOllama(t)
  const { url } = await testServer(t, fake)
  const send = (method: string, path: string, body?: unknown) =>
    fetch(`${url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
  const created = await json(await send('POST', '/v1/sessions', { title: 'E2E' }))
  await readSse(await send('POST', '/v1/chat', { message: 'ping', session_id: created.id }))
  const list = await json(await send('GET', '/v1/sessions?limit=1'))
  assert.equal(list.sessions[0].id, created.id)
  assert.equal(list.sessions[0].message_count, 2)
  assert.equal((await json(await send('GET', `/v1/sessions/${created.id}`))).title, 'E2E')
  assert.equal((await json(await send('PATCH', `/v1/sessions/${created.id}`, { title: 'Renamed' }))).title, 'Renamed')
  const first = await json(await send('GET', `/v1/sessions/${created.id}/messages?limit=1`))
  assert.equal(first.messages[0].content, 'ping')
  const second = await json(await send('GET', `/v1/sessions/${created.id}/messages?limit=1&cursor=${first.next_cursor}`))
  assert.equal(second.messages[0].content, 'You said: ping')
  assert.equal(second.next_cursor, null)
  assert.equal((await send('DELETE', `/v1/sessions/${created.id}`)).status, 204)
  assert.equal((await send('GET', `/v1/sessions/${created.id}`)).status, 404)
})
