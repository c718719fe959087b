import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import chat from '../functions/chat.ts'
import sessionCancel from '../functions/session-cancel.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionGet from '../functions/session-get.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionStream from '../functions/session-stream.ts'
import sessionUpdate from '../functions/session-update.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import sessionsList from '../functions/sessions-list.ts'
import type { FaasFunction } from '../lib/handler.ts'
import { chatRequest, fakeOllama, json, readSse, sseEvents, take, takeText, testApp, tokenText, toRequest } from './support/app.ts'

type Actor = 'alice' | 'bob'

/** The routes that take a session id, each as a request for `id`. */
const BY_ID: Array<{ name: string; fn: FaasFunction; request: (id: string) => Request }> = [
  { name: 'get', fn: sessionGet, request: (id) => toRequest(`GET /v1/sessions/${id}`) },
  { name: 'rename', fn: sessionUpdate, request: (id) => toRequest(`PATCH /v1/sessions/${id}`, { title: 'renamed by someone' }) },
  { name: 'delete', fn: sessionDelete, request: (id) => toRequest(`DELETE /v1/sessions/${id}`) },
  { name: 'messages', fn: sessionMessages, request: (id) => toRequest(`GET /v1/sessions/${id}/messages`) },
  { name: 'stream', fn: sessionStream, request: (id) => toRequest(`GET /v1/sessions/${id}/stream`) },
  { name: 'cancel', fn: sessionCancel, request: (id) => toRequest(`POST /v1/sessions/${id}/cancel`) },
]

const withKey = (request: Request, key: string) => {
  request.headers.set('authorization', `Bearer ${key}`)
  return request
}

/** A problem body with what differs between two ids (the id, the time, the request) taken out. */
function comparable(status: number, body: any, id: string): unknown {
  if (!body || typeof body !== 'object') return { status, body }
  const { timestamp: _timestamp, request_id: _requestId, ...rest } = body
  return JSON.parse(JSON.stringify({ status, ...rest }).replaceAll(id, '<id>'))
}

test('two users with keys, random operations on random ids of both: neither reads, changes, streams, cancels or deletes the other\'s data, and the other\'s ids answer as missing ones', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake, { AUTH: 'required', RATE_LIMIT: '0' })
  const keys = {} as Record<Actor, string>
  for (const name of ['alice', 'bob'] as const) {
    await app.access.store.addUser(name, 'user')
    keys[name] = (await app.access.store.createKey(name)).key
  }
  const owned: Record<Actor, string[]> = { alice: [], bob: [] }
  const call = (fn: FaasFunction, request: Request, actor: Actor) => fn.fetch(withKey(request, keys[actor]), app)

  /** What `actor` can see of everything: their list and each session's messages. */
  const snapshot = async (actor: Actor) => {
    const list = await json(await call(sessionsList, toRequest('GET /v1/sessions?limit=200'), actor))
    const messages = await Promise.all(owned[actor].map(async (id) => (await call(sessionMessages, toRequest(`GET /v1/sessions/${id}/messages?limit=500`), actor)).text()))
    return JSON.stringify([list.sessions, messages])
  }

  const operation = fc.record({
    actor: fc.constantFrom<Actor>('alice', 'bob'),
    kind: fc.constantFrom('create', 'chat', 'byId', 'list'),
    route: fc.integer({ min: 0, max: BY_ID.length - 1 }),
    target: fc.constantFrom('own', 'other', 'missing'),
    pick: fc.nat(),
  })

  await fc.assert(
    fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 8 }), async (operations) => {
      for (const { actor, kind, route, target, pick } of operations) {
        const other: Actor = actor === 'alice' ? 'bob' : 'alice'
        const pool = target === 'own' ? owned[actor] : target === 'other' ? owned[other] : []
        const id = pool.length > 0 ? pool[pick % pool.length]! : randomUUID()
        const otherBefore = await snapshot(other)

        if (kind === 'create') {
          const created = await json(await call(sessionsCreate, toRequest('POST /v1/sessions', { title: `${actor}'s secret` }), actor))
          owned[actor].push(created.id)
        } else if (kind === 'list') {
          const list = await json(await call(sessionsList, toRequest('GET /v1/sessions?limit=200'), actor))
          assert.ok(list.sessions.every((session: any) => owned[actor].includes(session.id)), 'a list shows only its own sessions')
        } else if (kind === 'chat') {
          const response = await call(chat, toRequest('POST /v1/chat', { message: `${actor} says hi`, session_id: id, stream: false }), actor)
          if (target === 'other' && pool.length > 0) {
            assert.equal(response.status, 404, 'a chat into the other\'s session is refused as not found')
            assert.doesNotMatch(await response.text(), /secret|says hi/)
          } else {
            assert.equal(response.status, 200)
            if (!owned[actor].includes(id)) owned[actor].push(id)
          }
        } else {
          const { name, fn, request } = BY_ID[route]!
          const response = await call(fn, request(id), actor)
          const body = response.headers.get('content-type')?.includes('json') ? await json(response) : await response.text()
          if (target === 'other' && pool.length > 0) {
            const missingId = randomUUID()
            const missing = await call(fn, request(missingId), actor)
            const missingBody = missing.headers.get('content-type')?.includes('json') ? await json(missing) : await missing.text()
            assert.deepEqual(comparable(response.status, body, id), comparable(missing.status, missingBody, missingId), `${name} on the other's id answers as on a missing one`)
          } else if (name === 'delete' && response.status === 204) {
            owned[actor].splice(owned[actor].indexOf(id), 1)
          } else if (name === 'stream' && response.status === 200) {
            await readSse(response as Response)
          }
        }
        assert.equal(await snapshot(other), otherBefore, `${actor}'s ${kind} changed nothing of ${other}'s`)
      }
    }),
    { numRuns: 60 },
  )
  assert.ok(owned.alice.length + owned.bob.length > 0)
})

test('another user\'s running reply: stream, cancel, delete and chat on its id answer 404 as for a missing id, and the reply goes on', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['private ', 'words '], paced: true } })
  const app = await testApp(t, fake, { AUTH: 'required', RATE_LIMIT: '0' })
  const key = async (name: string) => {
    await app.access.store.addUser(name, 'user')
    return (await app.access.store.createKey(name)).key
  }
  const [bobKey, aliceKey] = [await key('bob'), await key('alice')]
  const sessionId = randomUUID()
  fake.release(1)
  const running = sseEvents(await chat.fetch(withKey(chatRequest({ message: 'bob thinking', session_id: sessionId }), bobKey), app))
  await takeText(running, 'private ')
  for (const { name, fn, request } of BY_ID) {
    const missingId = randomUUID()
    const [theirs, missing] = await Promise.all([fn.fetch(withKey(request(sessionId), aliceKey), app), fn.fetch(withKey(request(missingId), aliceKey), app)])
    assert.equal(theirs.status, 404, name)
    assert.deepEqual(comparable(theirs.status, await json(theirs), sessionId), comparable(missing.status, await json(missing), missingId), name)
  }
  const intruding = await chat.fetch(withKey(chatRequest({ message: 'alice too', session_id: sessionId }), aliceKey), app)
  assert.equal(intruding.status, 404, 'not 409: the running reply is not revealed')
  assert.equal(app.generations.size, 1)
  fake.release(2)
  const rest = await take(running, 10)
  assert.equal(rest.at(-1)!.data.type, 'done')
  assert.equal(tokenText(rest), 'words ')
})
