import assert from 'node:assert/strict'
import { test } from 'node:test'
import models from '../functions/models.ts'
import { fakeOllama, json, testApp, toRequest } from './support/app.ts'

test("Ollama's models, in the contract's shape", async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', 'qwen3:8b'] })
  const response = await models.fetch(toRequest('GET /v1/models'), testApp(t, fake))
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.deepEqual(body.models.map((model: { name: string }) => model.name), ['llama3.2:latest', 'qwen3:8b'])
  assert.deepEqual(Object.keys(body.models[0]).sort(), ['details', 'modified_at', 'name', 'size'])
  assert.equal(body.models[0].details.family, 'llama')
})

test('ALLOWED_MODELS filters the list; a bare name means :latest', async (t) => {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', 'llama3.2:1b', 'qwen3:8b', 'mistral:latest'] })
  const response = await models.fetch(toRequest('GET /v1/models'), testApp(t, fake, { ALLOWED_MODELS: 'llama3.2,qwen3:8b' }))
  assert.deepEqual((await json(response)).models.map((model: { name: string }) => model.name), ['llama3.2:latest', 'qwen3:8b'])
})

test('Ollama unreachable is a 503 problem with Retry-After', async (t) => {
  const response = await models.fetch(toRequest('GET /v1/models'), testApp(t, null))
  assert.equal(response.status, 503)
  assert.ok(response.headers.get('retry-after'))
  assert.equal((await json(response)).type, 'https://api.chat-ollama.com/errors/ollama')
})
