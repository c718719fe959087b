import assert from 'node:assert/strict'
import { test } from 'node:test'
import health from '../functions/health.ts'
import { fakeOllama, json, testApp, toRequest } from './support/app.ts'

test('healthy when the database and Ollama both answer', async (t) => {
  const fake = await fakeOllama(t)
  const response = await health.fetch(toRequest('GET /health'), await testApp(t, fake))
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.equal(body.status, 'healthy')
  assert.deepEqual(body.services, { database: 'healthy', ollama: 'healthy' })
  assert.match(body.version, /^\d+\.\d+\.\d+/)
  assert.match(body.timestamp, /\.\d{3}Z$/)
})

test('Ollama down is degraded with 200, so the container is not restarted for it', async (t) => {
  const response = await health.fetch(toRequest('GET /health'), await testApp(t, null))
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.equal(body.status, 'degraded')
  assert.deepEqual(body.services, { database: 'healthy', ollama: 'unhealthy' })
})

test('a database that cannot answer is unhealthy with 503', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  await app.database.close()
  const response = await health.fetch(toRequest('GET /health'), app)
  assert.equal(response.status, 503)
  const body = await json(response)
  assert.equal(body.status, 'unhealthy')
  assert.deepEqual(body.services, { database: 'unhealthy', ollama: 'healthy' })
})

test('a flood of health checks reaches Ollama once', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const answers = await Promise.all(Array.from({ length: 50 }, () => health.fetch(toRequest('GET /health'), app)))
  for (const answer of answers) assert.equal((await json(answer)).services.ollama, 'healthy')
  await health.fetch(toRequest('HEAD /health'), app)
  assert.equal(fake.requests.filter((request) => request.path === '/api/version').length, 1)
})
