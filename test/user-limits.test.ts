/**
 * One user must not be able to starve the others: replies per user, over every route that
 * starts one.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import openaiChatCompletions from '../functions/openai-chat-completions.ts'
import openaiResponsesCreate from '../functions/openai-responses-create.ts'
import sessionCancel from '../functions/session-cancel.ts'
import { chatRequest, fakeOllama, json, testApp, toRequest } from './support/app.ts'

test('MAX_CONCURRENT_CHATS_PER_USER: past it a user gets 429 with Retry-After on every route that starts a reply, while another user is served', async (t) => {
  // Each reply sends one token and then waits until it is cancelled.
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b'], stallAfterTokens: 1 } })
  const app = await testApp(t, fake, { AUTH: 'required', RATE_LIMIT: '0', MAX_CONCURRENT_CHATS_PER_USER: '2' })
  const keyOf = async (name: string) => {
    await app.access.store.addUser(name, 'user')
    return { authorization: `Bearer ${(await app.access.store.createKey(name)).key}` }
  }
  const alice = await keyOf('alice')
  const bob = await keyOf('bob')

  const running: string[] = []
  for (let index = 0; index < 2; index++) {
    const response = await chat.fetch(chatRequest({ message: `hello ${index}` }, alice), app)
    assert.equal(response.status, 200)
    const reader = response.body!.getReader()
    const first = JSON.parse(/data: (.*)/.exec(new TextDecoder().decode((await reader.read()).value))![1]!)
    running.push(first.session_id)
    void reader.cancel()
  }

  const refusals = [
    await chat.fetch(chatRequest({ message: 'one more' }, alice), app),
    await openaiResponsesCreate.fetch(toRequest('POST /v1/responses', { model: 'llama3.2', input: 'hi', background: true }, alice), app),
    await openaiChatCompletions.fetch(toRequest('POST /v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }, alice), app),
  ]
  for (const refused of refusals) {
    assert.equal(refused.status, 429)
    assert.ok(Number(refused.headers.get('retry-after')) >= 1)
    assert.match(JSON.stringify(await json(refused)), /MAX_CONCURRENT_CHATS_PER_USER/)
  }
  assert.equal(fake.chatRequests().length, 2, 'nothing refused reached Ollama')

  const other = await chat.fetch(chatRequest({ message: 'bob is served' }, bob), app)
  assert.equal(other.status, 200)
  void other.body!.cancel()

  // A slot given back is a slot the user can use again.
  const cancelled = await sessionCancel.fetch(toRequest(`POST /v1/sessions/${running[0]}/cancel`, undefined, alice), app)
  assert.equal(cancelled.status, 200)
  const again = await chat.fetch(chatRequest({ message: 'room again' }, alice), app)
  assert.equal(again.status, 200)
  void again.body!.cancel()
  await app.generations.drain(0)
})

test('MAX_CONCURRENT_CHATS_PER_USER does not apply to the local user while AUTH is off', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b'], stallAfterTokens: 1 } })
  const app = await testApp(t, fake, { MAX_CONCURRENT_CHATS_PER_USER: '1' })
  for (let index = 0; index < 3; index++) {
    const response = await chat.fetch(chatRequest({ message: `hello ${index}` }), app)
    assert.equal(response.status, 200)
    void response.body!.cancel()
  }
  assert.equal(app.generations.size, 3)
  await app.generations.drain(0)
})
