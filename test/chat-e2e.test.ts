import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fakeOllama, json, readSse, testServer } from './support/app.ts'

const post = (url: string, body: unknown) =>
  fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

test('over real sockets: a streamed conversation of three turns, stored in order', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokenDelayMs: 2 } })
  const { url, app } = await testServer(t, fake, { OLLAMA_HOST: fake.url })
  let sessionId: string | undefined
  for (const message of ['first', 'second', 'third']) {
    const response = await post(url, { message, session_id: sessionId })
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), 'text/event-stream')
    assert.ok(response.headers.get('x-request-id'))
    const { events } = await readSse(response)
    sessionId ??= events[0]!.data.session_id
    const done = events.at(-1)!.data
    assert.equal(done.type, 'done')
    assert.equal(done.completion_tokens, 4)
  }
  const stored = (await app.store.listMessages(sessionId!, 100, null)).items
  assert.deepEqual(stored.map((message) => `${message.role}:${message.content}:${message.tokens_used ?? '-'}`), [
    'user:first:-', 'assistant:You said: first:4',
    'user:second:-', 'assistant:You said: second:4',
    'user:third:-', 'assistant:You said: third:4',
  ])
  assert.equal(fake.chatRequests()[2]!.body.messages.length, 5)
})

test('over real sockets: stream:false, a problem, and the models list', async (t) => {
  const fake = await fakeOllama(t)
  const { url } = await testServer(t, fake)
  const answer = await post(url, { message: 'hi', stream: false })
  assert.equal(answer.status, 200)
  assert.equal((await json(answer)).content, 'You said: hi')
  const missing = await post(url, { message: 'hi', model: 'nope:7b' })
  assert.equal(missing.status, 404)
  assert.equal(missing.headers.get('content-type'), 'application/problem+json')
  const list = await fetch(`${url}/v1/models`)
  assert.equal((await json(list)).models.length, 2)
})
