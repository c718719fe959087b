import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test, type TestContext } from 'node:test'
import chat from '../functions/chat.ts'
import sessionStream from '../functions/session-stream.ts'
import { GenerationRegistry } from '../lib/generation/registry.ts'
import { createAppContext } from '../lib/app.ts'
import { silentLogger } from '../lib/observability/log.ts'
import { chatRequest, fakeOllama, json, readSse, recordingLogger, sseEvents, storedRows, take, takeText, testApp, tokenText, toRequest, type SseEvent, within } from './support/app.ts'

const streamRequest = (sessionId: string, lastEventId?: string) =>
  toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, lastEventId ? { 'last-event-id': lastEventId } : {})

test('resuming a new reply with the last id of an earlier one replays the new reply from its start', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  const earlier = (await readSse(await chat.fetch(chatRequest({ message: 'first', session_id: sessionId }), app))).events
  const earlierLastId = earlier.at(-1)!.id!

  fake.next({ tokens: ['a ', 'b ', 'c '], paced: true })
  fake.release(2)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'second', session_id: sessionId }), app))
  const seen = await takeText(live, 'a b ')
  assert.notEqual(seen[0]!.data.message_id, earlier[0]!.data.message_id)
  assert.ok(!seen.some((event) => earlier.some((old) => old.id === event.id)), 'no id of the new reply repeats one of the earlier reply')

  const resumed = await sessionStream.fetch(streamRequest(sessionId, earlierLastId), app)
  fake.release(2)
  const { events } = await within(10_000, 'the resumed stream', readSse(resumed))
  assert.equal(events[0]!.data.type, 'start')
  assert.equal(events[0]!.data.message_id, seen[0]!.data.message_id)
  assert.equal(tokenText(events), 'a b c ')
  assert.equal(events.at(-1)!.data.type, 'done')
  await take(live, 100)
})

test('replay memory is bounded: old events are rebuilt from the text, with the ids and text a client that never left saw', async (t) => {
  const tokens = Array.from({ length: 30 }, (_, index) => `w${index} `)
  const fake = await fakeOllama(t, { scenario: { tokens, paced: true } })
  const app = await testApp(t, fake, {}, undefined, { generations: new GenerationRegistry(100, { tailEvents: 4, maxFollowers: 16 }) })
  const sessionId = randomUUID()
  fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'long', session_id: sessionId }), app))
  // One line at a time, each read before the next leaves: one token event per line.
  let seen: SseEvent[] = await takeText(live, 'w0 ')
  for (let index = 1; index < tokens.length; index++) {
    fake.release(1)
    seen = [...seen, ...(await takeText(live, tokens[index]!))]
  }
  assert.equal(seen.length, 1 + tokens.length)
  const generation = app.generations.get(sessionId)!
  assert.equal(generation.events.framesHeld, 1 + 4, 'the start frame and the last four events, not all 31')

  for (const after of [null, seen[0]!.id!, seen[3]!.id!, seen[20]!.id!, seen[27]!.id!]) {
    const replay = sseEvents(await sessionStream.fetch(streamRequest(sessionId, after ?? undefined), app))
    const index = after === null ? -1 : seen.findIndex((event) => event.id === after)
    const expectedText = tokenText(seen.slice(index + 1))
    const events = await takeText(replay, expectedText)
    const liveIds = seen.map((event) => event.id)
    assert.ok(events.every((event) => liveIds.includes(event.id)), `every replayed id is one the live client saw (after ${after})`)
    assert.deepEqual(events.slice(-Math.min(4, events.length)), seen.slice(-Math.min(4, events.length)), 'the recent events are replayed as they were')
    if (after === null) assert.deepEqual(events[0], seen[0])
    await replay.return(undefined)
  }
  fake.release(1)
  assert.equal((await take(live, 10)).at(-1)!.data.type, 'done')
})

test('coming back after the reply ended, with a Last-Event-ID of it: what followed that id with the live ids, then the stream closes; nothing left: 204', async (t) => {
  const tokens = ['alpha ', 'beta ', 'gamma ', 'delta']
  const fake = await fakeOllama(t, { scenario: { tokens, paced: true } })
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'count', session_id: sessionId }), app))
  let seen = await takeText(live, 'alpha ')
  for (const token of tokens.slice(1)) {
    fake.release(1)
    seen = [...seen, ...(await takeText(live, token))]
  }
  fake.release(1)
  for await (const event of live) if ('data' in event) seen.push(event)
  assert.equal(seen.at(-1)!.data.type, 'done')
  assert.equal(app.generations.get(sessionId), undefined, 'it has ended')
  for (const [index, event] of seen.slice(0, -1).entries()) {
    const { events } = await readSse(await sessionStream.fetch(streamRequest(sessionId, event.id!), app))
    assert.deepEqual(events, seen.slice(index + 1), `after ${event.id}: the events that followed it, as they were`)
  }
  const nothing = await sessionStream.fetch(streamRequest(sessionId, seen.at(-1)!.id!), app)
  assert.equal(nothing.status, 204, 'with the id of its end: nothing left, and an EventSource stops')
  assert.equal((await sessionStream.fetch(streamRequest(sessionId), app)).status, 404, 'without an id: no reply runs')

  // Past the time its events are kept (here: a server that never ran it, as after a restart), the store answers.
  const restarted = createAppContext(app.config, { log: silentLogger, database: app.database })
  const stored = await readSse(await sessionStream.fetch(streamRequest(sessionId, seen.at(-3)!.id!), restarted))
  assert.equal(stored.events.at(-1)!.id, seen.at(-1)!.id, 'its end, with the id it had')
  assert.deepEqual(stored.events.at(-1)!.data, seen.at(-1)!.data)
  const fromStart = await readSse(await sessionStream.fetch(streamRequest(sessionId, `${seen[0]!.data.message_id}:0`), restarted))
  assert.equal(tokenText(fromStart.events), 'alpha beta gamma delta')
  assert.deepEqual([fromStart.events[0]!.id, fromStart.events.at(-1)!.id], [seen[0]!.id, seen.at(-1)!.id])
  assert.equal((await sessionStream.fetch(streamRequest(sessionId, seen.at(-1)!.id!), restarted)).status, 204)
})

test('followers of one reply are capped: past the cap, 429 with Retry-After', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['x '], paced: true } })
  const app = await testApp(t, fake, {}, undefined, { generations: new GenerationRegistry(100, { tailEvents: 64, maxFollowers: 2 }) })
  const sessionId = randomUUID()
  fake.release(1)
  const original = sseEvents(await chat.fetch(chatRequest({ message: 'popular', session_id: sessionId }), app))
  await takeText(original, 'x ')
  const follower = await sessionStream.fetch(streamRequest(sessionId), app)
  assert.equal(follower.status, 200)
  const refused = await sessionStream.fetch(streamRequest(sessionId), app)
  assert.equal(refused.status, 429)
  assert.ok(refused.headers.get('retry-after'))
  assert.match((await json(refused)).detail, /2 clients/)
  fake.release(1)
  assert.equal((await within(10_000, 'the follower', readSse(follower))).events.at(-1)!.data.type, 'done')
  await take(original, 10)
})

/** A paced reply whose stored row is changed from outside after its first token, as a second server on the database would. */
async function replyWithRowTakenAway(t: TestContext, tokens: string[], env: Record<string, string>) {
  const fake = await fakeOllama(t, { scenario: { tokens, paced: true } })
  const log = recordingLogger()
  const app = await testApp(t, fake, env, log)
  fake.release(1)
  const live = sseEvents(await chat.fetch(chatRequest({ message: 'lost' }), app))
  const [start] = await takeText(live, tokens[0]!)
  const messageId: string = start!.data.message_id
  await storedRows(app, "UPDATE messages SET status = 'interrupted' WHERE id = ?", messageId)
  return { fake, log, app, live, messageId }
}

test('when the final write does not land, the client gets error, not done, and the log says why', async (t) => {
  // No checkpoint before the end: the final write is the first to find the row changed.
  const { fake, log, app, live, messageId } = await replyWithRowTakenAway(t, ['one ', 'two '], { CHECKPOINT_INTERVAL: '1h' })
  fake.release(2)
  const rest = await take(live, 10)
  const last = rest.at(-1)!.data
  assert.equal(last.type, 'error')
  assert.equal(last.error, 'The reply could not be stored.')
  assert.ok(!rest.some((event) => event.data.type === 'done'))
  assert.ok(log.entries.some((entry) => entry.level === 'error' && entry.message === 'reply could not be stored' && /no longer streaming/.test(String(entry.fields.error))))
  assert.equal((await app.store.getMessage(messageId))!.status, 'interrupted', 'nothing overwrote the row')
})

test('when a checkpoint finds its row gone, the reply stops: Ollama is aborted and the client gets error', async (t) => {
  const { fake, log, app, live } = await replyWithRowTakenAway(t, ['one ', 'two ', 'three '], { CHECKPOINT_INTERVAL: '10ms' })
  // The next token arms a checkpoint; the rest of the reply is held back, so only that checkpoint can end it.
  fake.release(1)
  const rest = await take(live, 10)
  assert.equal(rest.at(-1)!.data.type, 'error')
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
  assert.ok(log.entries.some((entry) => entry.message === 'reply could not be checkpointed'))
  assert.equal(app.generations.size, 0)
})
