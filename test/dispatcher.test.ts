import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createDispatcher } from '../lib/http/dispatcher.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { json, storedRows, testApp, testServer, toRequest } from './support/app.ts'

const echo = defineFunction({
  name: 'echo',
  method: 'GET',
  path: '/things/:id',
  handle: (_request, { params, requestId }) => Response.json({ id: params.id, requestId }),
})
const failing = defineFunction({
  name: 'failing',
  method: 'POST',
  path: '/things/:id',
  handle: async (_request, { app }) => {
    // A query that fails in the database, whichever backend it is.
    await storedRows(app, 'SELECT secret FROM vault')
    return new Response('unreachable')
  },
})
const refusing = defineFunction({
  name: 'refusing',
  method: 'DELETE',
  path: '/things/:id',
  handle: () => {
    throw new HttpProblem(409, 'conflict', 'busy', { headers: { 'retry-after': '3' } })
  },
})

test('a function answers its own route with params and a request id', async (t) => {
  const app = await testApp(t, null)
  const response = await echo.fetch(toRequest('GET /things/42'), app)
  assert.equal(response.status, 200)
  const body = await json(response)
  assert.equal(body.id, '42')
  assert.match(body.requestId, /^[0-9a-f-]{36}$/)
  assert.equal(response.headers.get('x-request-id'), body.requestId)
})

test('a sent X-Request-Id is echoed; an unsafe one is replaced', async (t) => {
  const app = await testApp(t, null)
  const echoed = await echo.fetch(toRequest('GET /things/1', undefined, { 'x-request-id': 'client-trace.7' }), app)
  assert.equal(echoed.headers.get('x-request-id'), 'client-trace.7')
  const replaced = await echo.fetch(toRequest('GET /things/1', undefined, { 'x-request-id': 'bad id with spaces' }), app)
  assert.match(replaced.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/)
})

test('unknown paths are 404 problems and known paths with another method 405 with Allow', async (t) => {
  const app = await testApp(t, null)
  const dispatcher = createDispatcher([echo, failing, refusing], app)
  const missing = await dispatcher.fetch(toRequest('GET /nothing/here'))
  assert.equal(missing.status, 404)
  assert.equal(missing.headers.get('content-type'), 'application/problem+json')
  const problem = await json(missing)
  assert.deepEqual(Object.keys(problem).sort(), ['detail', 'instance', 'request_id', 'status', 'timestamp', 'title', 'type'])
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/not_found')
  assert.equal(problem.instance, '/nothing/here')
  assert.equal(problem.request_id, missing.headers.get('x-request-id'))
  assert.match(problem.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

  const wrong = await dispatcher.fetch(toRequest('PUT /things/1'))
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'GET, POST, DELETE, HEAD, OPTIONS')
  assert.equal((await json(wrong)).type, 'https://api.chat-ollama.com/errors/method_not_allowed')
})

test('errors meant for the client keep their status and headers; others leak nothing', async (t) => {
  const logged: string[] = []
  const app = await testApp(t, null, {}, { debug() {}, info() {}, warn() {}, error: (message, fields) => void logged.push(`${message} ${String(fields?.error)}`) })
  const dispatcher = createDispatcher([echo, failing, refusing], app)
  const conflict = await dispatcher.fetch(toRequest('DELETE /things/1'))
  assert.equal(conflict.status, 409)
  assert.equal(conflict.headers.get('retry-after'), '3')

  const broken = await dispatcher.fetch(toRequest('POST /things/1', {}))
  assert.equal(broken.status, 500)
  const body = await json(broken)
  assert.equal(body.type, 'https://api.chat-ollama.com/errors/database')
  assert.doesNotMatch(JSON.stringify(body), /vault|secret|SQL/)
  assert.equal(logged.length, 1)
  // The log has the database's own words (SQLite's or PostgreSQL's); the client got none of them.
  assert.match(logged[0]!, /vault/)
})

test('a lost database connection, in any of the forms postgres.js reports it, is 503 database with Retry-After', async (t) => {
  const app = await testApp(t, null, {})
  // As postgres.js rejects a query: Node's socket errors as they are, its own codes for a closed connection.
  const lost = [
    Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }),
    Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT', errno: -110, syscall: 'read' }),
    Object.assign(new Error('getaddrinfo EAI_AGAIN db'), { code: 'EAI_AGAIN', syscall: 'getaddrinfo' }),
    Object.assign(new Error('connect EHOSTUNREACH 10.0.0.9:5432'), { code: 'EHOSTUNREACH', syscall: 'connect' }),
    Object.assign(new Error('write CONNECTION_DESTROYED db:5432'), { code: 'CONNECTION_DESTROYED' }),
    Object.assign(new Error('terminating connection due to administrator command'), { name: 'PostgresError', code: '57P01' }),
  ]
  for (const error of lost) {
    const throwing = defineFunction({ name: 'throwing', method: 'GET', path: '/lost', handle: () => Promise.reject(error) })
    const response = await createDispatcher([throwing], app).fetch(toRequest('GET /lost'))
    assert.equal(response.status, 503, error.message)
    assert.equal(response.headers.get('retry-after'), '1', error.message)
    assert.equal((await json(response)).type, 'https://api.chat-ollama.com/errors/database', error.message)
  }
})

test('CORS: no origin by default, only listed origins otherwise, and preflights', async (t) => {
  const sameOriginOnly = createDispatcher([echo], await testApp(t, null))
  const foreign = await sameOriginOnly.fetch(toRequest('GET /things/1', undefined, { origin: 'https://elsewhere.example' }))
  assert.equal(foreign.headers.get('access-control-allow-origin'), null)
  const foreignPreflight = await sameOriginOnly.fetch(toRequest('OPTIONS /things/1', undefined, { origin: 'https://elsewhere.example', 'access-control-request-method': 'DELETE' }))
  assert.equal(foreignPreflight.headers.get('access-control-allow-origin'), null)

  const closed = createDispatcher([echo, failing], await testApp(t, null, { CORS_ORIGINS: 'https://chat.example' }))
  const listed = await closed.fetch(toRequest('GET /things/1', undefined, { origin: 'https://chat.example' }))
  assert.equal(listed.headers.get('access-control-allow-origin'), 'https://chat.example')
  assert.match(listed.headers.get('access-control-expose-headers')!, /x-request-id/)
  assert.equal(listed.headers.get('vary'), 'Origin')
  const other = await closed.fetch(toRequest('GET /things/1', undefined, { origin: 'https://evil.example' }))
  assert.equal(other.headers.get('access-control-allow-origin'), null)

  const preflight = await closed.fetch(toRequest('OPTIONS /things/1', undefined, {
    origin: 'https://chat.example',
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type',
  }))
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://chat.example')
  assert.equal(preflight.headers.get('access-control-allow-methods'), 'GET, POST, HEAD, OPTIONS')
  assert.equal(preflight.headers.get('access-control-allow-headers'), 'content-type')
  assert.equal((await closed.fetch(toRequest('OPTIONS /nowhere'))).status, 404)
})

test('over real sockets: 404, 405, HEAD and the request id', async (t) => {
  const { url } = await testServer(t, null)
  const missing = await fetch(`${url}/v1/nothing`)
  assert.equal(missing.status, 404)
  assert.equal((await json(missing)).instance, '/v1/nothing')
  const wrong = await fetch(`${url}/health`, { method: 'DELETE' })
  assert.equal(wrong.status, 405)
  assert.equal(wrong.headers.get('allow'), 'GET, HEAD, OPTIONS')
  const head = await fetch(`${url}/health`, { method: 'HEAD', headers: { 'x-request-id': 'probe-1' } })
  assert.equal(head.status, 200)
  assert.equal(head.headers.get('x-request-id'), 'probe-1')
  assert.equal(await head.text(), '')
})
