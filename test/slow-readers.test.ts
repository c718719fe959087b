/**
 * Clients that follow a stream but do not read it, and too many followers of one response: memory
 * stays bounded, the reply itself goes on and is stored.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { connect } from 'node:net'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import openaiResponsesCreate from '../functions/openai-responses-create.ts'
import openaiResponsesGet from '../functions/openai-responses-get.ts'
import { chatRequest, fakeOllama, json, storedMessages, testApp, testServer, toRequest, within } from './support/app.ts'

/** Tokens of 64 KiB each: a few make more than any client's queue may hold. */
const bigTokens = (count: number) => Array.from({ length: count }, (_, index) => `${index}`.padEnd(64 * 1024, '.'))

test('a client that does not read its event stream is dropped once 1 MiB waits for it; the reply goes on and is stored whole', async (t) => {
  const tokens = bigTokens(40)
  const fake = await fakeOllama(t, { scenario: { tokens, paced: true } })
  const app = await testApp(t, fake)
  const sessionId = randomUUID()
  fake.release(1)
  // Never read: every frame of this reply queues for this client.
  const unread = await chat.fetch(chatRequest({ message: 'a lot', session_id: sessionId }), app)
  assert.equal(unread.status, 200)
  const generation = app.generations.get(sessionId)!
  assert.equal(generation.events.followers, 1)
  fake.release(tokens.length)
  await within(10_000, 'the unread client to be dropped', fake.waitFor(() => generation.events.followers === 0))
  const outcome = await within(10_000, 'the reply', generation.outcome)
  assert.equal(outcome.status, 'complete')
  assert.equal((await storedMessages(app, sessionId)).at(-1)!.content, tokens.join(''))
  await assert.rejects(unread.text(), 'the dropped client\'s stream ends in an error, not a clean end it could take for the whole reply')
})

test('over a socket, a follower that stops reading is dropped and its connection closed; the reply goes on', async (t) => {
  const tokens = bigTokens(200)
  const fake = await fakeOllama(t, { scenario: { tokens, paced: true } })
  const running = await testServer(t, fake, { WRITE_TIMEOUT: '300ms' })
  const sessionId = randomUUID()
  fake.release(1)
  const starter = await fetch(`${running.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'x', session_id: sessionId }) })
  await starter.body!.cancel()
  const generation = running.app.generations.get(sessionId)!

  const socket = connect(Number(new URL(running.url).port), '127.0.0.1')
  socket.on('error', () => {})
  socket.write(`GET /v1/sessions/${sessionId}/stream HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  // Reads nothing, ever: the kernel's buffers fill, then the server's writes stop draining.
  socket.pause()
  await within(10_000, 'the follower to attach', fake.waitFor(() => generation.events.followers === 1))
  const connections = () => new Promise<number>((resolve) => running.server.getConnections((_error, count) => resolve(count)))
  fake.release(tokens.length)
  await within(20_000, 'the silent client\'s connection to be closed', (async () => {
    while ((await connections()) > 0) await new Promise((resolve) => setTimeout(resolve, 20))
  })())
  assert.equal(generation.events.followers, 0)
  assert.equal((await within(10_000, 'the reply', generation.outcome)).status, 'complete')
  socket.destroy()
})

test('followers of one response are capped like a reply\'s: the 17th gets 429 with Retry-After', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['x ', 'y '], paced: true } })
  const app = await testApp(t, fake)
  fake.release(1)
  const created = await json(await openaiResponsesCreate.fetch(toRequest('POST /v1/responses', { model: 'llama3.2', input: 'hi', background: true }), app))
  await within(10_000, 'the response to start', app.responses.registry.get(created.id)!.started)
  const follow = () => openaiResponsesGet.fetch(toRequest(`GET /v1/responses/${created.id}?stream=true`), app)
  const followers: Response[] = []
  for (let index = 0; index < 16; index++) {
    const response = await follow()
    assert.equal(response.status, 200)
    followers.push(response)
  }
  const refused = await follow()
  assert.equal(refused.status, 429)
  assert.ok(Number(refused.headers.get('retry-after')) >= 1)
  assert.equal((await json(refused)).error.type, 'rate_limit_error')
  fake.release(2)
  for (const response of followers) assert.match(await within(10_000, 'a follower', response.text()), /response\.completed/)
})
