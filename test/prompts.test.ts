import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import promptDelete from '../functions/prompt-delete.ts'
import promptUpdate from '../functions/prompt-update.ts'
import promptsCreate from '../functions/prompts-create.ts'
import promptsList from '../functions/prompts-list.ts'
import type { AppContext } from '../lib/context.ts'
import type { FaasFunction } from '../lib/handler.ts'
import { MAX_SAVED_PROMPTS } from '../lib/http/prompt-input.ts'
import { json, problemFor, storedRows, testApp, toRequest } from './support/app.ts'

function call(app: AppContext, fn: FaasFunction, route: string, body?: unknown, key?: string): Promise<Response> {
  return fn.fetch(toRequest(route, body, key ? { authorization: `Bearer ${key}` } : {}), app)
}
const listed = async (app: AppContext, key?: string) => (await json(await call(app, promptsList, 'GET /v1/prompts', undefined, key))).prompts

test('saved prompts: created (201, trimmed title), listed by title, changed, deleted', async (t) => {
  const app = await testApp(t, null)
  const created = await call(app, promptsCreate, 'POST /v1/prompts', { title: '  Translate  ', content: 'Translate into French:\n' })
  assert.equal(created.status, 201)
  const translate = await json(created)
  assert.deepEqual(Object.keys(translate).sort(), ['content', 'created_at', 'id', 'title', 'updated_at'])
  assert.equal(translate.title, 'Translate')
  assert.equal(translate.content, 'Translate into French:\n', 'the text is kept as written')
  assert.equal(created.headers.get('location'), `/v1/prompts/${translate.id}`)
  await call(app, promptsCreate, 'POST /v1/prompts', { title: 'Explain code', content: 'Explain what this code does:' })
  assert.deepEqual((await listed(app)).map((prompt: { title: string }) => prompt.title), ['Explain code', 'Translate'])

  const changed = await json(await call(app, promptUpdate, `PATCH /v1/prompts/${translate.id.toUpperCase()}`, { content: 'Translate into German:' }))
  assert.deepEqual([changed.title, changed.content], ['Translate', 'Translate into German:'])
  assert.ok(changed.updated_at >= translate.updated_at)
  assert.equal((await call(app, promptDelete, `DELETE /v1/prompts/${translate.id}`)).status, 204)
  assert.equal((await call(app, promptDelete, `DELETE /v1/prompts/${translate.id}`)).status, 404)
  assert.deepEqual((await listed(app)).map((prompt: { title: string }) => prompt.title), ['Explain code'])
})

test('bad prompts are 400s that store nothing; a user keeps at most MAX_SAVED_PROMPTS (409 past it)', async (t) => {
  const app = await testApp(t, null)
  for (const body of [{}, { title: 'x' }, { content: 'x' }, { title: ' ', content: 'x' }, { title: 'x', content: '  \n' }, { title: 'x'.repeat(101), content: 'x' },
    { title: 'x', content: 'x'.repeat(20_001) }, { title: 'x', content: 'x', extra: 1 }, { title: 5, content: 'x' }, [], 'text']) {
    assert.equal((await call(app, promptsCreate, 'POST /v1/prompts', body)).status, 400, JSON.stringify(body).slice(0, 80))
  }
  assert.equal(Number((await storedRows(app, 'SELECT count(*) AS n FROM prompts'))[0].n), 0)
  const one = await json(await call(app, promptsCreate, 'POST /v1/prompts', { title: 'one', content: 'text' }))
  for (const body of [{}, { title: '' }, { content: '' }, { other: 1 }]) {
    assert.equal((await call(app, promptUpdate, `PATCH /v1/prompts/${one.id}`, body)).status, 400, JSON.stringify(body))
  }
  assert.equal((await call(app, promptUpdate, 'PATCH /v1/prompts/not-a-uuid', { title: 'x' })).status, 400)
  assert.equal((await call(app, promptUpdate, `PATCH /v1/prompts/${randomUUID()}`, { title: 'x' })).status, 404)

  for (let n = 1; n < MAX_SAVED_PROMPTS; n++) await call(app, promptsCreate, 'POST /v1/prompts', { title: `p${n}`, content: 'text' })
  const full = await call(app, promptsCreate, 'POST /v1/prompts', { title: 'one too many', content: 'text' })
  assert.equal(full.status, 409)
  assert.match((await json(full)).detail, /delete one first/)
  assert.equal((await listed(app)).length, MAX_SAVED_PROMPTS)
})

test('another user\'s prompts are never listed, changed or deleted, and their ids answer as missing ones', async (t) => {
  const app = await testApp(t, null, { AUTH: 'required', RATE_LIMIT: '0' })
  const keys: Record<string, string> = {}
  for (const name of ['alice', 'bob']) {
    await app.access.store.addUser(name, 'user')
    keys[name] = (await app.access.store.createKey(name)).key
  }
  const alices = await json(await call(app, promptsCreate, 'POST /v1/prompts', { title: 'Secret', content: 'alice\'s words' }, keys.alice))
  assert.deepEqual(await listed(app, keys.bob), [])
  const missing = randomUUID()
  for (const [fn, method, body] of [[promptUpdate, 'PATCH', { content: 'bob was here' }], [promptDelete, 'DELETE', undefined]] as const) {
    const theirs = await call(app, fn, `${method} /v1/prompts/${alices.id}`, body, keys.bob)
    assert.equal(theirs.status, 404)
    assert.equal(await problemFor(theirs, alices.id), await problemFor(await call(app, fn, `${method} /v1/prompts/${missing}`, body, keys.bob), missing))
  }
  assert.deepEqual((await listed(app, keys.alice)).map((prompt: { content: string }) => prompt.content), ['alice\'s words'])
})
