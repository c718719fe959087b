/**
 * Structured output on the native API (docs/api.md "Structured output"): `format` passed to
 * Ollama, the reply stored as the JSON text, a bad schema refused before anything is stored. On
 * both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import regenerate from '../functions/session-regenerate.ts'
import sessionMessages from '../functions/session-messages.ts'
import { MAX_FORMAT_CHARS, MAX_FORMAT_DEPTH } from '../lib/http/chat-input.ts'
import { chatRequest, fakeOllama, json, rowCounts, testApp, toRequest } from './support/app.ts'

const personSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 18 }, tags: { type: 'array', items: { type: 'string' } } },
  required: ['name', 'age', 'tags'],
}

test('format: a JSON Schema goes to Ollama as it is; the reply is JSON that follows it, stored as its text', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const answer = await json(await chat.fetch(chatRequest({ message: 'Ada', stream: false, format: personSchema }), app))
  assert.deepEqual(fake.chatRequests().at(-1)!.body.format, personSchema)
  assert.deepEqual(JSON.parse(answer.content), { name: 'Ada', age: 18, tags: ['Ada'] })
  const { messages } = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${answer.session_id}/messages`), app))
  assert.equal(messages.at(-1).content, answer.content)

  // A regeneration takes its own format ("json" here), and none is kept from the turn before.
  const again = await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${answer.session_id}/messages/${answer.id}/regenerate`, { stream: false, format: 'json' }), app))
  assert.equal(fake.chatRequests().at(-1)!.body.format, 'json')
  assert.deepEqual(JSON.parse(again.content), { answer: 'Ada' })
  await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${answer.session_id}/messages/${again.id}/regenerate`, { stream: false }), app))
  assert.equal('format' in fake.chatRequests().at(-1)!.body, false)
})

test('format that is not "json" or a bounded schema object is 400 naming it; nothing is stored or sent', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  let deep: Record<string, unknown> = { type: 'string' }
  // One level each (the body itself may nest 64 deep at most).
  for (let level = 0; level < MAX_FORMAT_DEPTH; level++) deep = { not: deep }
  const bad = [
    ['xml', /must be "json" or a JSON Schema object/],
    [['json'], /must be "json" or a JSON Schema object/],
    [{ type: 'object', description: 'x'.repeat(MAX_FORMAT_CHARS) }, /at most 32768 characters/],
    [deep, /nest at most 32 levels/],
  ] as const
  for (const [format, message] of bad) {
    const response = await chat.fetch(chatRequest({ message: 'hi', stream: false, format }), app)
    assert.equal(response.status, 400)
    const problem = await json(response)
    assert.equal(problem.errors[0].path, 'format')
    assert.match(problem.detail, message)
  }
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(fake.chatRequests().length, 0)
})
