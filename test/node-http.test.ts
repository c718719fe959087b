import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { test, type TestContext } from 'node:test'
import { readJsonBody } from '../lib/http/body.ts'
import { silentLogger } from '../lib/observability/log.ts'
import { serveNodeRequest, type FetchHandler } from '../lib/http/node-http.ts'
import { HttpProblem, problemResponse } from '../lib/shared/problem.ts'
import { json, within } from './support/app.ts'

const MAX_BODY = 64 * 1024

/** A node:http server running `handler` through the adapter. */
async function serve(t: TestContext, handler: FetchHandler, writeTimeoutMs = 30_000): Promise<{ port: number; url: string }> {
  const server = createServer((req, res) => void serveNodeRequest(req, res, handler, { maxBodyBytes: MAX_BODY, writeTimeoutMs, log: silentLogger }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  const { port } = server.address() as AddressInfo
  return { port, url: `http://127.0.0.1:${port}` }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(5)
  }
}

test('an event stream whose client reads nothing for WRITE_TIMEOUT is closed; the stream is cancelled', async (t) => {
  const chunk = new Uint8Array(64 * 1024).fill(120)
  let produced = 0
  const cancelled = Promise.withResolvers<void>()
  const { port } = await serve(t, async () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          // Bounded, but far more than the socket buffers of both sides hold.
          if (produced >= 256 * 1024 * 1024) return controller.close()
          produced += chunk.length
          controller.enqueue(chunk)
        },
        cancel: () => cancelled.resolve(),
      }, { highWaterMark: 0 }),
      { headers: { 'content-type': 'text/event-stream' } },
    ),
  200)
  const response = await new Promise<IncomingMessage>((resolve) => httpRequest({ port, path: '/' }, resolve).end())
  response.on('error', () => {})
  response.pause()
  await within(10_000, 'the silent client\'s stream to be cancelled', cancelled.promise)
})

test('a slow reader makes the server wait instead of buffering the whole body', async (t) => {
  const chunk = new Uint8Array(64 * 1024).fill(120)
  const total = 64 * 1024 * 1024
  let produced = 0
  const { port } = await serve(t, async () =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          if (produced >= total) return controller.close()
          produced += chunk.length
          controller.enqueue(chunk)
        },
      }, { highWaterMark: 0 }),
    ),
  )
  const response = await new Promise<IncomingMessage>((resolve) => httpRequest({ port, path: '/' }, resolve).end())
  response.pause()
  await sleep(300)
  // Socket buffers on both sides hold a few MiB at most; the rest must not have been produced.
  assert.ok(produced < 16 * 1024 * 1024, `produced ${produced} bytes for a reader that read nothing`)
  let received = 0
  response.on('data', (data: Buffer) => (received += data.length))
  response.resume()
  await new Promise((resolve) => response.once('end', resolve))
  assert.equal(received, total)
})

test('the request signal aborts when the client goes away mid-response', async (t) => {
  let seen: AbortSignal | undefined
  let cancelled = false
  const { port } = await serve(t, async (request) => {
    seen = request.signal
    return new Response(new ReadableStream({ start(controller) { controller.enqueue(new TextEncoder().encode('first')) }, cancel() { cancelled = true } }))
  })
  const req = httpRequest({ port, path: '/' })
  req.end()
  const response = await new Promise<IncomingMessage>((resolve) => req.once('response', resolve))
  await new Promise((resolve) => response.once('data', resolve))
  assert.equal(seen?.aborted, false)
  req.destroy()
  await until(() => seen!.aborted && cancelled)
})

test('HEAD gets the headers and no body, and an endless body is not pumped', async (t) => {
  let cancelled = false
  const { url } = await serve(t, async () =>
    new Response(new ReadableStream({ pull(controller) { controller.enqueue(new Uint8Array(10)) }, cancel() { cancelled = true } }), {
      headers: { 'content-type': 'text/event-stream' },
    }),
  )
  const response = await fetch(url, { method: 'HEAD' })
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  assert.equal(await response.text(), '')
  await until(() => cancelled)
})

test('a handler that throws gives a 500 problem, and the server keeps serving', async (t) => {
  let calls = 0
  const { url } = await serve(t, async () => {
    calls++
    if (calls === 1) throw new Error('secret internals')
    return new Response('fine')
  })
  const failed = await fetch(url)
  assert.equal(failed.status, 500)
  assert.equal(failed.headers.get('content-type'), 'application/problem+json')
  const body = await json(failed)
  assert.equal(body.request_id, failed.headers.get('x-request-id'))
  assert.equal(body.type, 'https://api.chat-ollama.com/errors/internal')
  assert.doesNotMatch(JSON.stringify(body), /secret internals/)
  assert.equal(await (await fetch(url)).text(), 'fine')
})

test('an error after the headers were sent destroys the socket', async (t) => {
  const { port } = await serve(t, async () =>
    new Response(new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('partial'))
        setTimeout(() => controller.error(new Error('upstream broke')), 20)
      },
    })),
  )
  const response = await new Promise<IncomingMessage>((resolve) => httpRequest({ port, path: '/' }, resolve).end())
  const outcome = await new Promise<string>((resolve) => {
    response.on('data', () => {})
    response.once('end', () => resolve('ended cleanly'))
    response.once('aborted', () => resolve('aborted'))
    response.once('error', () => resolve('aborted'))
  })
  assert.equal(outcome, 'aborted')
})

/** A handler that reads the JSON body and answers problems the way the dispatcher does. */
const echoJson: FetchHandler = async (request) => {
  try {
    return Response.json({ got: await readJsonBody(request, MAX_BODY) })
  } catch (error) {
    assert.ok(error instanceof HttpProblem)
    return problemResponse(error, '/', 'test')
  }
}

test('a body declared larger than the limit gets 413 at once, unread', async (t) => {
  const { port } = await serve(t, echoJson)
  const socket = connect(port, '127.0.0.1')
  socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 * 1024}\r\n\r\n`)
  socket.write('{"a":"')
  let reply = ''
  socket.on('data', (data) => (reply += data.toString()))
  await new Promise((resolve) => socket.once('close', resolve))
  assert.match(reply, /^HTTP\/1\.1 413 /)
  assert.match(reply, /connection: close/i)
  assert.match(reply, /payload_too_large/)
})

test('a chunked body that passes the limit gets 413 and the rest is not read', async (t) => {
  const { port } = await serve(t, echoJson)
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n')
  let reply = ''
  socket.on('data', (data) => (reply += data.toString()))
  const closed = new Promise((resolve) => socket.once('close', resolve))
  const piece = 'x'.repeat(16 * 1024)
  let sent = 0
  // Keep sending well past the limit; the server answers and closes instead of reading it all.
  for (let index = 0; index < 400 && !socket.destroyed && !reply; index++) {
    socket.write(`${piece.length.toString(16)}\r\n${piece}\r\n`)
    sent += piece.length
    await sleep(1)
  }
  await closed
  assert.match(reply, /^HTTP\/1\.1 413 /)
  assert.ok(sent < 400 * piece.length, 'the server read the whole body')
})

test('a body within the limit is read whole, and a bodiless POST has none', async (t) => {
  const { url } = await serve(t, echoJson)
  const big = { text: 'é'.repeat(20_000) }
  const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(big) })
  assert.deepEqual(await json(ok), { got: big })
  const empty = await fetch(url, { method: 'POST' })
  assert.deepEqual(await json(empty), {})
})

test('bad JSON bodies get 400 and other media types 415', async (t) => {
  const { url } = await serve(t, echoJson)
  const post = (body: string | Uint8Array, contentType: string) => fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body })
  const malformed = await post('{"a":', 'application/json')
  assert.equal(malformed.status, 400)
  assert.match((await json(malformed)).detail, /not valid JSON/)
  const badUtf8 = await post(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]), 'application/json')
  assert.equal(badUtf8.status, 400)
  assert.match((await json(badUtf8)).detail, /UTF-8/)
  const text = await post('hello', 'text/plain')
  assert.equal(text.status, 415)
  assert.equal((await json(text)).type, 'https://api.chat-ollama.com/errors/unsupported_media_type')
  assert.equal((await post('{"a":1}', 'application/merge-patch+json; charset=utf-8')).status, 200)
})

test('several Set-Cookie headers stay separate', async (t) => {
  const { url } = await serve(t, async () => {
    const headers = new Headers()
    headers.append('set-cookie', 'a=1')
    headers.append('set-cookie', 'b=2')
    return new Response('ok', { headers })
  })
  const response = await fetch(url)
  assert.deepEqual(response.headers.getSetCookie(), ['a=1', 'b=2'])
})

test('a response that cannot be written within WRITE_TIMEOUT is cut', async (t) => {
  const { port } = await serve(t, async () => new Response(new ReadableStream({ pull: () => new Promise<void>(() => {}) })), 100)
  const outcome = await new Promise<string>((resolve) => {
    const req = httpRequest({ port, path: '/' }, (response) => {
      response.on('data', () => {})
      response.once('end', () => resolve('ended'))
      response.once('error', () => resolve('cut'))
    })
    req.once('error', () => resolve('cut'))
    req.end()
  })
  assert.equal(outcome, 'cut')
})

test('odd request lines and header bytes get a 4xx or their route, never a 500', async (t) => {
  const { port } = await serve(t, async (request) => Response.json({ path: new URL(request.url).pathname, agent: request.headers.get('x-odd') }))
  const raw = (head: string) =>
    new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      let reply = ''
      socket.on('data', (data) => (reply += data.toString('latin1')))
      socket.on('close', () => resolve(reply))
      socket.on('error', () => resolve(reply))
      socket.end(Buffer.from(head, 'latin1'))
    })
  const protocolRelative = await raw('GET //evil.example/v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  assert.match(protocolRelative, /^HTTP\/1\.1 200 /)
  assert.match(protocolRelative, /"path":"\/\/evil\.example\/v1\/sessions"/)
  const latin1 = await raw('GET / HTTP/1.1\r\nHost: x\r\nX-Odd: caf\xe9 \x7f\r\nConnection: close\r\n\r\n')
  assert.doesNotMatch(latin1, /^HTTP\/1\.1 5/)
  const badHost = await raw('GET / HTTP/1.1\r\nHost: a b/c\r\nConnection: close\r\n\r\n')
  assert.doesNotMatch(badHost, /^HTTP\/1\.1 5/)
})

test('an event stream sends its headers at once, before its first event', async (t) => {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const { url } = await serve(t, async () =>
    new Response(new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }), { headers: { 'content-type': 'text/event-stream' } }),
  )
  // Nothing is enqueued until the client has its headers: before the fix, this waited for ever.
  const response = await within(10_000, 'the event stream headers', fetch(url))
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  controller.enqueue(new TextEncoder().encode('data: {}\n\n'))
  controller.close()
  assert.equal(await response.text(), 'data: {}\n\n')
})
