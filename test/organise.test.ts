import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import foldersList from '../functions/folders-list.ts'
import search from '../functions/search.ts'
import sessionGet from '../functions/session-get.ts'
import sessionUpdate from '../functions/session-update.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import sessionsList from '../functions/sessions-list.ts'
import type { FaasFunction } from '../lib/handler.ts'
import type { AppContext } from '../lib/context.ts'
import { json, problemFor, testApp, toRequest } from './support/app.ts'

const patch = (app: AppContext, id: string, body: unknown, key?: string) => call(app, sessionUpdate, toRequest(`PATCH /v1/sessions/${id}`, body), key)
const titles = async (app: AppContext, query = '', key?: string) =>
  (await json(await call(app, sessionsList, toRequest(`GET /v1/sessions?limit=200${query}`), key))).sessions.map((session: { title: string }) => session.title)

function call(app: AppContext, fn: FaasFunction, request: Request, key?: string): Promise<Response> {
  if (key) request.headers.set('authorization', `Bearer ${key}`)
  return fn.fetch(request, app)
}

async function chats(app: AppContext, ...names: string[]): Promise<Record<string, string>> {
  const ids: Record<string, string> = {}
  for (const title of names) ids[title] = (await json(await sessionsCreate.fetch(toRequest('POST /v1/sessions', { title }), app))).id
  return ids
}

test('pin, archive and file chats: each field kept and listed; the list filters on them; organising does not make a chat newer', async (t) => {
  const app = await testApp(t, null)
  const ids = await chats(app, 'plain', 'pinned', 'archived', 'filed', 'filed and pinned')
  const before = await json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${ids.pinned}`), app))
  assert.deepEqual([before.pinned, before.archived, before.folder], [false, false, null])

  const pinned = await json(await patch(app, ids.pinned!, { pinned: true }))
  assert.deepEqual([pinned.pinned, pinned.archived, pinned.folder], [true, false, null])
  assert.equal(pinned.updated_at, before.updated_at, 'organising is not activity')
  await patch(app, ids.archived!, { archived: true })
  await patch(app, ids.filed!, { folder: '  Work  ' })
  assert.equal((await json(await patch(app, ids['filed and pinned']!, { folder: 'Work', pinned: true }))).folder, 'Work')

  assert.deepEqual(await titles(app), ['filed and pinned', 'filed', 'pinned', 'plain'], 'archived chats are out of the list')
  assert.deepEqual(await titles(app, '&archived=true'), ['archived'])
  assert.deepEqual(await titles(app, '&archived=all'), ['filed and pinned', 'filed', 'archived', 'pinned', 'plain'])
  assert.deepEqual(await titles(app, '&pinned=true'), ['filed and pinned', 'pinned'])
  assert.deepEqual(await titles(app, '&pinned=false&folder='), ['plain'], 'the chats in no folder, not pinned')
  assert.deepEqual(await titles(app, `&folder=${encodeURIComponent('Work')}`), ['filed and pinned', 'filed'])
  assert.deepEqual(await titles(app, '&order=created&archived=all'), ['plain', 'pinned', 'archived', 'filed', 'filed and pinned'])
  assert.deepEqual(await json(await foldersList.fetch(toRequest('GET /v1/folders'), app)), { folders: [{ name: 'Work', count: 2 }] })

  // An archived chat is still found, and restored to the list; null takes one out of its folder.
  const found = await json(await search.fetch(toRequest('GET /v1/search?q=archived'), app))
  assert.ok(found.results.some((hit: { session_id: string }) => hit.session_id === ids.archived))
  await patch(app, ids.archived!, { archived: false, folder: 'Later' })
  await patch(app, ids.filed!, { folder: null })
  assert.deepEqual(await json(await foldersList.fetch(toRequest('GET /v1/folders'), app)), { folders: [{ name: 'Later', count: 1 }, { name: 'Work', count: 1 }] })
  await patch(app, ids.archived!, { archived: true })
  assert.deepEqual((await json(await foldersList.fetch(toRequest('GET /v1/folders'), app))).folders, [{ name: 'Work', count: 1 }], 'an archived chat is not counted in its folder')

  // Renaming still is activity.
  const renamed = await json(await patch(app, ids.plain!, { title: 'plain, renamed' }))
  assert.ok(renamed.updated_at > before.updated_at)
})

test('paging a filtered list walks only its chats, without a repeat or a gap', async (t) => {
  const app = await testApp(t, null)
  const ids = await chats(app, ...Array.from({ length: 12 }, (_, n) => `chat ${n}`))
  for (let n = 0; n < 12; n += 2) await patch(app, ids[`chat ${n}`]!, { folder: 'Even' })
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page: { sessions: Array<{ title: string }>; next_cursor: string | null } =
      await json(await sessionsList.fetch(toRequest(`GET /v1/sessions?limit=4&folder=Even${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), app))
    seen.push(...page.sessions.map((session) => session.title))
    cursor = page.next_cursor
  } while (cursor)
  assert.deepEqual(seen, await titles(app, '&folder=Even'), 'the order of one long page')
  assert.deepEqual([...seen].sort(), [0, 10, 2, 4, 6, 8].map((n) => `chat ${n}`))
})

test('bad organising input is a 400 that changes nothing; bad list filters are 400s', async (t) => {
  const app = await testApp(t, null)
  const { chat } = await chats(app, 'chat')
  for (const body of [{ pinned: 'yes' }, { archived: 1 }, { folder: '' }, { folder: '   ' }, { folder: 'x'.repeat(101) }, { folder: 5 }, { folder: 'ok', pinned: null }]) {
    const response = await patch(app, chat!, body)
    assert.equal(response.status, 400, JSON.stringify(body))
    assert.equal((await json(response)).type, 'https://api.chat-ollama.com/errors/validation')
  }
  const session = await json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${chat}`), app))
  assert.deepEqual([session.pinned, session.archived, session.folder], [false, false, null])
  for (const query of ['archived=maybe', 'pinned=1', `folder=${'x'.repeat(101)}`, 'folder=a&folder=b', 'archived=true&archived=false']) {
    assert.equal((await sessionsList.fetch(toRequest(`GET /v1/sessions?${query}`), app)).status, 400, query)
  }
  assert.equal((await patch(app, randomUUID(), { pinned: true })).status, 404)
})

test('another user\'s chat cannot be pinned, archived or filed (answered as a missing one), and folders are each user\'s own', async (t) => {
  const app = await testApp(t, null, { AUTH: 'required', RATE_LIMIT: '0' })
  const keys: Record<string, string> = {}
  for (const name of ['alice', 'bob']) {
    await app.access.store.addUser(name, 'user')
    keys[name] = (await app.access.store.createKey(name)).key
  }
  const create = async (key: string, title: string) => (await json(await call(app, sessionsCreate, toRequest('POST /v1/sessions', { title }), key))).id as string
  const alices = await create(keys.alice!, 'alice\'s')
  await patch(app, alices, { folder: 'Secret plans' }, keys.alice)
  await create(keys.bob!, 'bob\'s')

  const missing = randomUUID()
  for (const body of [{ pinned: true }, { archived: true }, { folder: 'Taken' }]) {
    const theirs = await patch(app, alices, body, keys.bob)
    assert.equal(theirs.status, 404)
    assert.equal(await problemFor(theirs, alices), await problemFor(await patch(app, missing, body, keys.bob), missing))
  }
  assert.deepEqual(await json(await call(app, foldersList, toRequest('GET /v1/folders'), keys.bob)), { folders: [] })
  assert.deepEqual(await titles(app, `&folder=${encodeURIComponent('Secret plans')}`, keys.bob), [])
  assert.deepEqual(await titles(app, '&archived=all', keys.bob), ['bob\'s'])
  const kept = await json(await call(app, sessionGet, toRequest(`GET /v1/sessions/${alices}`), keys.alice))
  assert.deepEqual([kept.pinned, kept.archived, kept.folder], [false, false, 'Secret plans'])
})
