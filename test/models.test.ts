import assert from 'node:assert/strict'
import { test } from 'node:test'
import models from '../functions/models.ts'
import chat from '../functions/chat.ts'
import { chatRequest, fakeOllama, json, testApp, toRequest } from './support/app.ts'

test("Ollama's models, in the contract's shape", async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', 'qwen3:8b'] })
  const response = await models.fetch(toRequest('GET /v1/models'), await testApp(t, fake))
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.deepEqual(body.models.map((model: { name: string }) => model.name), ['llama3.2:latest', 'qwen3:8b'])
  assert.deepEqual(Object.keys(body.models[0]).sort(), ['details', 'hosts', 'modified_at', 'name', 'size'])
  assert.equal(body.object, 'list')
  assert.deepEqual(body.data[0], { id: 'llama3.2:latest', object: 'model', created: 1746405464, owned_by: 'library' })
  assert.deepEqual(body.models[0].hosts, [fake.url])
  assert.equal(body.models[0].details.family, 'llama')
})

test('ALLOWED_MODELS filters the list; a bare name means :latest', async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', 'llama3.2:1b', 'qwen3:8b', 'mistral:latest'] })
  const response = await models.fetch(toRequest('GET /v1/models'), await testApp(t, fake, { ALLOWED_MODELS: 'llama3.2,qwen3:8b' }))
  assert.deepEqual((await json(response)).models.map((model: { name: string }) => model.name), ['llama3.2:latest', 'qwen3:8b'])
})

test('Ollama unreachable is a 503 with Retry-After, in OpenAI\'s error shape (OpenAI\'s SDKs list models here)', async (t) => {
  const response = await models.fetch(toRequest('GET /v1/models'), await testApp(t, null))
  assert.equal(response.status, 503)
  assert.ok(response.headers.get('retry-after'))
  assert.deepEqual((await json(response)).error.code, 'ollama')
})

test('ALLOWED_MODELS and the model check read names alike: case, registry and namespace do not matter', async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', 'qwen3:8b'] })
  const app = await testApp(t, fake, { ALLOWED_MODELS: 'Library/Llama3.2' })
  for (const model of ['llama3.2', 'LLAMA3.2:latest', 'registry.ollama.ai/library/llama3.2']) {
    const response = await chat.fetch(chatRequest({ message: 'hi', model, stream: false }), app)
    assert.equal(response.status, 200, `${model}: ${await response.clone().text()}`)
  }
  const refused = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', stream: false }), app)
  assert.equal(refused.status, 400)
  const listed = await json(await models.fetch(toRequest('GET /v1/models'), app))
  assert.deepEqual(listed.models.map((model: { name: string }) => model.name), ['llama3.2:latest'])
})
