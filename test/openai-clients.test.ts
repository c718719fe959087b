/**
 * What real OpenAI clients tripped on, with the official `openai` SDK as the client against the
 * server over a socket and the fake Ollama.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { authServer, fakeOllama, json, testServer } from './support/app.ts'
import type { FakeOllamaOptions } from './support/fake-ollama.ts'

async function openAI(t: TestContext, options: FakeOllamaOptions = {}, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, options)
  const server = await testServer(t, fake, env)
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, server, client }
}

test('models.retrieve: one model in OpenAI\'s shape with its capabilities, a namespaced id too; an unknown or disallowed one is NotFoundError', async (t) => {
  const { client } = await openAI(t, { models: ['llama3.2:latest', 'myns/coder:7b', 'qwen3:8b'], capabilities: { 'myns/coder:7b': ['completion', 'thinking'] } }, { ALLOWED_MODELS: 'llama3.2,myns/coder:7b' })
  const model = await client.models.retrieve('llama3.2')
  assert.deepEqual({ ...model, created: typeof model.created }, { id: 'llama3.2:latest', object: 'model', created: 'number', owned_by: 'library', capabilities: ['completion', 'tools'] })
  const namespaced = await client.models.retrieve('myns/coder:7b')
  assert.deepEqual([namespaced.owned_by, (namespaced as unknown as { capabilities: string[] }).capabilities], ['myns', ['completion', 'thinking']])
  for (const id of ['no-such-model', 'qwen3:8b']) {
    await assert.rejects(client.models.retrieve(id), (error: any) => error instanceof OpenAI.NotFoundError && error.code === 'model_not_found')
  }
})

test('401, 405 and 415 on the OpenAI routes, /v1/models included, come in OpenAI\'s error shape', async (t) => {
  const fake = await fakeOllama(t)
  const guarded = await authServer(t, fake, { RATE_LIMIT: '0' })
  await assert.rejects(new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'cko_wrong', maxRetries: 0 }).models.list(), OpenAI.AuthenticationError)
  const unauthorized = await fetch(`${guarded.url}/v1/models`)
  assert.equal(unauthorized.status, 401)
  assert.equal((await json(unauthorized)).error.type, 'authentication_error')

  const { server } = await openAI(t)
  const wrongMethod = await fetch(`${server.url}/v1/responses`, { method: 'PUT' })
  assert.equal(wrongMethod.status, 405)
  assert.ok(wrongMethod.headers.get('allow'))
  assert.equal((await json(wrongMethod)).error.code, 'method_not_allowed')
  const notJson = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' })
  assert.equal(notJson.status, 415)
  assert.equal((await json(notJson)).error.type, 'invalid_request_error')
  // The native routes keep RFC 7807.
  const native = await fetch(`${server.url}/v1/sessions`, { method: 'PUT' })
  assert.equal(native.headers.get('content-type'), 'application/problem+json')
})

test('background with stream: the events flow from creation; a client that leaves can resume after N', async (t) => {
  const tokens = ['a ', 'b ', 'c ']
  const { client, fake } = await openAI(t, { scenario: { tokens, paced: true } })
  fake.release(1)
  const stream = await client.responses.create({ model: 'llama3.2', input: 'slowly', background: true, stream: true })
  const seen: any[] = []
  for await (const event of stream) {
    seen.push(event)
    if (event.type === 'response.output_text.delta') break
  }
  assert.deepEqual(seen.slice(0, 2).map((event) => event.type), ['response.created', 'response.in_progress'])
  const id = seen[0].response.id
  fake.release(tokens.length)
  const resumed: any[] = []
  for await (const event of await client.responses.retrieve(id, { stream: true, starting_after: seen.at(-1).sequence_number })) resumed.push(event)
  assert.equal(resumed[0].sequence_number, seen.at(-1).sequence_number + 1)
  assert.equal(resumed.at(-1).type, 'response.completed')
  assert.equal(resumed.at(-1).response.output_text ?? resumed.at(-1).response.output[0].content[0].text, tokens.join(''))
  assert.equal((await client.responses.retrieve(id)).status, 'completed')
})

test('schema details: output_text parts have annotations and logprobs, an empty list has no null ids, usage has cache_write_tokens', async (t) => {
  const { client, fake } = await openAI(t)
  const conversation = await client.conversations.create({})
  const empty = await json(await fetch(`${client.baseURL}/conversations/${conversation.id}/items`))
  assert.deepEqual(empty.data, [])
  assert.ok(!('first_id' in empty) || typeof empty.first_id === 'string')
  assert.ok(!('last_id' in empty) || typeof empty.last_id === 'string')

  fake.next({ tokens: ['Hi.'] })
  const response = await client.responses.create({ model: 'llama3.2', input: 'hello', conversation: conversation.id })
  assert.equal(response.usage!.input_tokens_details.cache_write_tokens, 0)
  const items = await json(await fetch(`${client.baseURL}/conversations/${conversation.id}/items?order=asc`))
  const reply = items.data.find((item: any) => item.role === 'assistant')
  assert.deepEqual(reply.content, [{ type: 'output_text', text: 'Hi.', annotations: [], logprobs: [] }])
  assert.equal(typeof items.first_id, 'string')
})
