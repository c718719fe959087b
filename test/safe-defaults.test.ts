import assert from 'node:assert/strict'
import { request } from 'node:http'
import { hostname } from 'node:os'
import { test } from 'node:test'
import sessionCancel from '../functions/session-cancel.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import { loadConfig } from '../lib/shared/config.ts'
import { json, rowCounts, testApp, testServer, toRequest } from './support/app.ts'

/** A GET over a real socket with the Host header a browser tricked by DNS rebinding would send. */
function getWithHost(url: string, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(path, url)
    const outgoing = request({ hostname: target.hostname, port: target.port, path: target.pathname, headers: { host } }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve({ status: response.statusCode!, body }))
    })
    outgoing.on('error', reject).end()
  })
}

test('by default the server listens on loopback and allows no cross-origin reads', () => {
  const config = loadConfig({})
  assert.equal(config.host, '127.0.0.1')
  assert.deepEqual(config.corsOrigins, [])
})

test('on loopback a foreign Host (DNS rebinding) gets 403; local names, IP literals and ALLOWED_HOSTS pass', async (t) => {
  const { url, app } = await testServer(t, null, { ALLOWED_HOSTS: 'chat.home.arpa' })
  await app.store.createSession({ title: 'secret diary entry' })
  const refused = await getWithHost(url, '/v1/sessions', 'evil.example:8080')
  assert.equal(refused.status, 403)
  assert.equal(JSON.parse(refused.body).type, 'https://api.chat-ollama.com/errors/forbidden')
  assert.doesNotMatch(refused.body, /secret diary/)
  for (const host of ['localhost:8080', 'chat.localhost', '127.0.0.1:8080', '[::1]:8080', '192.168.1.20', hostname(), 'chat.home.arpa:8080', 'LOCALHOST']) {
    assert.equal((await getWithHost(url, '/v1/sessions', host)).status, 200, host)
  }
  for (const host of ['localhost.evil.example', 'evil.example', 'chat.home.arpa.evil.example', 'a b']) {
    assert.equal((await getWithHost(url, '/v1/sessions', host)).status, 403, host)
  }
})

test('listening on all interfaces, the Host is not checked (reachable by any name, like Ollama in its container)', async (t) => {
  const { url } = await testServer(t, null, { HOST: '0.0.0.0' })
  const port = new URL(url).port
  assert.equal((await getWithHost(`http://127.0.0.1:${port}`, '/health', 'api.internal:8080')).status, 200)
})

test('a write that declares a non-JSON Content-Type is 415 and changes nothing, even with an empty body', async (t) => {
  const app = await testApp(t, null)
  const before = await rowCounts(app)
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const refused = await sessionsCreate.fetch(toRequest('POST /v1/sessions', undefined, { 'content-type': type }), app)
    assert.equal(refused.status, 415, type)
    assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/unsupported_media_type')
    const cancel = await sessionCancel.fetch(toRequest('POST /v1/sessions/0b6e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4/cancel', undefined, { 'content-type': type }), app)
    assert.equal(cancel.status, 415, `cancel with ${type}`)
  }
  assert.deepEqual(await rowCounts(app), before)
  assert.equal((await sessionsCreate.fetch(toRequest('POST /v1/sessions'), app)).status, 201, 'a bodiless POST with no Content-Type is fine')
})
