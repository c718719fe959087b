import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import messageUpdate from '../functions/message-update.ts'
import metrics from '../functions/metrics.ts'
import sessionMessages from '../functions/session-messages.ts'
import type { AppContext } from '../lib/context.ts'
import { chatRequest, fakeOllama, json, problemFor, readSse, testApp, toRequest } from './support/app.ts'

const rate = (app: AppContext, sessionId: string, messageId: string, body: unknown, headers: Record<string, string> = {}) =>
  messageUpdate.fetch(toRequest(`PATCH /v1/sessions/${sessionId}/messages/${messageId}`, body, headers), app)

async function ratingsCounted(app: AppContext): Promise<Record<string, number>> {
  const text = await (await metrics.fetch(toRequest('GET /metrics'), app)).text()
  const count = (rating: string) => Number(new RegExp(`^chat_ollama_reply_ratings_total\\{rating="${rating}"\\} (\\d+)$`, 'm').exec(text)?.[1])
  return { up: count('up'), down: count('down') }
}

async function oneTurn(app: AppContext, headers: Record<string, string> = {}) {
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'hello' }, headers), app))
  const start = events[0]!.data
  return { sessionId: start.session_id as string, replyId: start.message_id as string, questionId: start.user_message_id as string }
}

const listed = async (app: AppContext, sessionId: string) =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages.map((message: { role: string; rating?: string }) => [message.role, message.rating ?? null])

test('a reply rated up, then down, then unrated: kept, listed with the messages, counted in the metrics once per rating given', async (t) => {
  const app = await testApp(t, await fakeOllama(t))
  const { sessionId, replyId } = await oneTurn(app)
  assert.deepEqual(await ratingsCounted(app), { up: 0, down: 0 })

  const up = await rate(app, sessionId, replyId, { rating: 'up' })
  assert.equal(up.status, 200)
  assert.deepEqual([(await json(up)).id, (await json(await rate(app, sessionId, replyId, { rating: 'up' }))).rating], [replyId, 'up'])
  assert.deepEqual(await listed(app, sessionId), [['user', null], ['assistant', 'up']])
  assert.deepEqual(await ratingsCounted(app), { up: 1, down: 0 }, 'the same rating again is not counted again')

  await rate(app, sessionId, replyId, { rating: 'down' })
  assert.deepEqual(await listed(app, sessionId), [['user', null], ['assistant', 'down']])
  const cleared = await json(await rate(app, sessionId, replyId, { rating: null }))
  assert.equal('rating' in cleared, false)
  assert.deepEqual(await listed(app, sessionId), [['user', null], ['assistant', null]])
  assert.deepEqual(await ratingsCounted(app), { up: 1, down: 1 })
})

test('only a reply is rated; bad bodies, missing messages and another user\'s replies change nothing', async (t) => {
  const app = await testApp(t, await fakeOllama(t), { AUTH: 'required', RATE_LIMIT: '0' })
  const headers: Record<string, Record<string, string>> = {}
  for (const name of ['alice', 'bob']) {
    await app.access.store.addUser(name, 'user')
    headers[name] = { authorization: `Bearer ${(await app.access.store.createKey(name)).key}` }
  }
  const alices = await oneTurn(app, headers.alice)
  await rate(app, alices.sessionId, alices.replyId, { rating: 'up' }, headers.alice)

  const question = await rate(app, alices.sessionId, alices.questionId, { rating: 'up' }, headers.alice)
  assert.equal(question.status, 400)
  assert.match((await json(question)).detail, /only a reply/i)
  for (const body of [{}, { rating: 'meh' }, { rating: 1 }, { rating: 'up', extra: true }, [], 'up']) {
    assert.equal((await rate(app, alices.sessionId, alices.replyId, body, headers.alice)).status, 400, JSON.stringify(body))
  }
  assert.equal((await rate(app, alices.sessionId, randomUUID(), { rating: 'down' }, headers.alice)).status, 404)

  // Bob: Alice's session answers as a missing one, and her rating stays.
  const theirs = await rate(app, alices.sessionId, alices.replyId, { rating: 'down' }, headers.bob)
  const missing = randomUUID()
  assert.equal(theirs.status, 404)
  assert.equal(await problemFor(theirs, alices.sessionId), await problemFor(await rate(app, missing, alices.replyId, { rating: 'down' }, headers.bob), missing))
  const bobs = await oneTurn(app, headers.bob)
  assert.equal((await rate(app, bobs.sessionId, alices.replyId, { rating: 'down' }, headers.bob)).status, 404, 'her reply through his own session')
  const kept = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${alices.sessionId}/messages`, undefined, headers.alice), app))
  assert.deepEqual(kept.messages.map((message: { rating?: string }) => message.rating ?? null), [null, 'up'])
})
