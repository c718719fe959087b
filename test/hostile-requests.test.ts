/**
 * Requests that are odd or hostile rather than wrong: they get a clear 4xx/5xx problem, are
 * counted, change nothing, and leave no stack trace in the log.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startServer } from '../lib/server.ts'
import { fakeOllama, json, recordingLogger, rowCounts, sqliteOnly, testConfig, testServer } from './support/app.ts'

/** Sends `head` as a raw HTTP/1.1 request and resolves with the whole answer once the server closes. */
function rawRequest(url: string, head: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  let reply = ''
  socket.on('data', (data) => (reply += data.toString()))
  socket.on('error', () => {})
  socket.write(head)
  return new Promise((resolve) => socket.once('close', () => resolve(reply)))
}

test('an impossible Host and a TRACE are clear problems (400, 501), counted in metrics, with no error in the log', async (t) => {
  const log = recordingLogger()
  const running = await startServer(testConfig({ OLLAMA_HOST: '127.0.0.1:9' }), { log })
  t.after(() => running.shutdown())
  const badHost = await rawRequest(running.url, 'GET /health HTTP/1.1\r\nHost: localhost:99999\r\nConnection: close\r\n\r\n')
  assert.match(badHost, /^HTTP\/1\.1 400 /)
  assert.match(badHost, /application\/problem\+json/)
  assert.match(badHost, /"type":"https:\/\/api\.chat-ollama\.com\/errors\/validation"/)
  const trace = await rawRequest(running.url, 'TRACE /v1/sessions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  assert.match(trace, /^HTTP\/1\.1 501 /)
  assert.match(trace, /"type":"https:\/\/api\.chat-ollama\.com\/errors\/not_implemented"/)
  assert.deepEqual(log.entries.filter((entry) => entry.level === 'error'), [])

  const metrics = await (await fetch(`${running.url}/metrics`)).text()
  assert.match(metrics, /chat_ollama_http_requests_total\{function="none",method="GET",status="400"\} 1/)
  assert.match(metrics, /chat_ollama_http_requests_total\{function="none",method="other",status="501"\} 1/)
  assert.match(metrics, /chat_ollama_problems_total\{kind="not_implemented"\} 1/)
})

test('TRACK and CONNECT are 501 like TRACE, and malformed percent-encoding in a path is 400 on every route, not 500', async (t) => {
  const log = recordingLogger()
  const running = await startServer(testConfig({ OLLAMA_HOST: '127.0.0.1:9' }), { log })
  t.after(() => running.shutdown())
  for (const head of ['TRACK /v1/sessions HTTP/1.1', 'CONNECT localhost:443 HTTP/1.1']) {
    const answer = await rawRequest(running.url, `${head}\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
    assert.match(answer, /^HTTP\/1\.1 501 /, head)
    assert.match(answer, /"type":"https:\/\/api\.chat-ollama\.com\/errors\/not_implemented"/, head)
  }
  for (const path of ['/v1/models/%ff', '/v1/sessions/%e0%a4/messages', '/v1/responses/%ff', '/v1/attachments/%c0', '/v1/nothing/%ff']) {
    const response = await fetch(`${running.url}${path}`)
    assert.equal(response.status, 400, path)
    const body = await json(response)
    assert.match(JSON.stringify(body), /percent-encoding/, path)
  }
  assert.deepEqual(log.entries.filter((entry) => entry.level === 'error'), [])
  const metrics = await (await fetch(`${running.url}/metrics`)).text()
  assert.match(metrics, /chat_ollama_http_requests_total\{function="none",method="other",status="501"\} 2/)
})

test('JSON nested deeper than 64 levels is 400 on every route, before any handler reads it (a 5,000-level schema included)', async (t) => {
  const fake = await fakeOllama(t)
  const { url } = await testServer(t, fake)
  // As text: JSON.stringify itself would overflow the stack on 5,000 levels.
  const deep = (levels: number) => '{"type":"object","properties":{"inner":'.repeat(levels) + '{"type":"string"}' + '}}'.repeat(levels)
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const attempts = [
    post('/v1/responses', `{"model":"llama3.2","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":${deep(5000)}}}}`),
    post('/v1/chat/completions', `{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deep(5000)}}}}`),
    post('/v1/chat', `{"message":"hi","options":${deep(40)}}`),
  ]
  for (const response of await Promise.all(attempts)) {
    assert.equal(response.status, 400)
    assert.match(JSON.stringify(await json(response)), /nested deeper than 64/)
  }
  assert.equal(fake.chatRequests().length, 0)
  // A string full of brackets is not nesting.
  const brackets = await post('/v1/chat', { message: '['.repeat(1000), stream: false })
  assert.equal(brackets.status, 200)
})

test('a cross-site write is refused with 403 and changes nothing, also with AUTH off and no cookie; same-origin and listed origins pass', async (t) => {
  const { url, app } = await testServer(t, null, { CORS_ORIGINS: 'https://chat.example' })
  const create = (headers: Record<string, string>) => fetch(`${url}/v1/sessions`, { method: 'POST', headers })
  // What `fetch(url, {method: 'POST', mode: 'no-cors'})` from another site sends: no body, no Content-Type.
  for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }] as Array<Record<string, string>>) {
    const refused = await create(headers)
    assert.equal(refused.status, 403, JSON.stringify(headers))
    assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/forbidden')
  }
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  for (const headers of [{}, { 'sec-fetch-site': 'same-origin' }, { origin: url }, { 'sec-fetch-site': 'cross-site', origin: 'https://chat.example' }, { 'sec-fetch-site': 'none' }] as Array<Record<string, string>>) {
    assert.equal((await create(headers)).status, 201, JSON.stringify(headers))
  }
  // Reads are not writes: a cross-site GET is answered (CORS keeps its body from the other site).
  assert.equal((await fetch(`${url}/v1/sessions`, { headers: { 'sec-fetch-site': 'cross-site' } })).status, 200)
})

test('a new database, its -wal and -shm, and the folder made for it are private to the server\'s user (0600 / 0700)', sqliteOnly('SQLite\'s files; PostgreSQL keeps its own'), async (t) => {
  const folder = join(mkdtempSync(join(tmpdir(), 'chat-ollama-private-')), 'made', 'here')
  const dbPath = join(folder, 'chat.db')
  const { url } = await testServer(t, null, { DB_PATH: dbPath })
  assert.equal((await fetch(`${url}/v1/sessions`, { method: 'POST' })).status, 201)
  const mode = (path: string) => statSync(path).mode & 0o777
  assert.equal(mode(folder), 0o700)
  assert.equal(mode(join(folder, '..')), 0o700)
  for (const file of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) assert.equal(mode(file), 0o600, file)
})
