import { randomUUID } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { tooLarge } from './body.ts'
import { setClientAddress } from './client-address.ts'
import { loggedPath, type Logger } from '../observability/log.ts'
import { HttpProblem, problemResponse } from '../shared/problem.ts'

export interface AdapterOptions {
  /** The largest body a request may send: a number, or one per method and path. */
  maxBodyBytes: number | ((method: string, path: string) => number)
  /** Longest time to write a response that is not an event stream (WRITE_TIMEOUT). */
  writeTimeoutMs: number
  log: Logger
  /** Told of each request refused before it could become a Request (an impossible Host, TRACE), for metrics. */
  refused?: (method: string, problem: HttpProblem) => void
}

export type FetchHandler = (request: Request) => Promise<Response>

const BODYLESS = new Set(['GET', 'HEAD'])

/**
 * Serves one node:http request with a fetch-style handler. The Request's body is read lazily and
 * stops at `maxBodyBytes`; its signal aborts when the client goes away before the response is
 * done. The Response is written with backpressure. Nothing thrown here escapes the listener.
 */
export async function serveNodeRequest(req: IncomingMessage, res: ServerResponse, handler: FetchHandler, options: AdapterOptions): Promise<void> {
  const disconnected = new AbortController()
  // The response's close, before it finished, is the one sign of a client gone that covers every case.
  res.once('close', () => {
    if (!res.writableFinished) disconnected.abort()
  })
  let response: Response
  try {
    const limit = typeof options.maxBodyBytes === 'number' ? options.maxBodyBytes : options.maxBodyBytes(req.method ?? 'GET', (req.url ?? '/').split('?', 1)[0]!)
    const request = requestOrProblem(req, disconnected.signal, limit)
    if (request instanceof HttpProblem) {
      const requestId = randomUUID()
      options.refused?.(req.method ?? 'GET', request)
      response = problemResponse(request, safePath(req.url), requestId)
      response.headers.set('x-request-id', requestId)
    } else {
      setClientAddress(request, req.socket.remoteAddress)
      response = await handler(request)
    }
  } catch (error) {
    const requestId = randomUUID()
    options.log.error('request could not be handled', { request_id: requestId, method: req.method, url: loggedPath(req.url), error })
    response = problemResponse(new HttpProblem(500, 'internal', 'An unexpected error occurred.'), safePath(req.url), requestId)
    response.headers.set('x-request-id', requestId)
  }
  try {
    await writeResponse(req, res, response, disconnected.signal, options)
  } catch (error) {
    options.log.warn('response was cut short', { method: req.method, url: loggedPath(req.url), error })
    res.destroy()
  }
}

/**
 * Answers what node:http never turns into a request, on its socket, and closes it: a CONNECT (a
 * proxy's tunnel: 501), a method its parser does not know (TRACK: 501), and every other parse
 * error as node:http itself would (400, 408, 413, 431).
 */
export function answerUnparsed(socket: Duplex, error: (Error & { code?: string }) | undefined, options: Pick<AdapterOptions, 'refused'>): void {
  if (!socket.writable || error?.code === 'ECONNRESET') {
    socket.destroy()
    return
  }
  const code = error?.code
  if (error === undefined || code === 'HPE_INVALID_METHOD') {
    const problem = new HttpProblem(501, 'not_implemented', error === undefined ? 'This server is no proxy: it does not implement CONNECT.' : 'This server does not implement that method.')
    const requestId = randomUUID()
    options.refused?.('other', problem)
    const response = problemResponse(problem, '/', requestId)
    void response.text().then((body) => {
      const head = [`HTTP/1.1 501 ${STATUS_CODES[501]}`, `content-type: ${response.headers.get('content-type')}`, `content-length: ${Buffer.byteLength(body)}`, `x-request-id: ${requestId}`, 'connection: close']
      socket.end(`${head.join('\r\n')}\r\n\r\n${body}`)
    })
    return
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW' ? 413 : 400
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\n\r\n`)
}

/** Methods node:http parses that a WHATWG Request refuses to carry. */
const UNSUPPORTED_METHODS = new Set(['TRACE'])

/** The Request, or the problem answering what cannot be one: a method we do not serve, a Host that is no host. */
function requestOrProblem(req: IncomingMessage, signal: AbortSignal, maxBodyBytes: number): Request | HttpProblem {
  const method = req.method ?? 'GET'
  if (UNSUPPORTED_METHODS.has(method)) return new HttpProblem(501, 'not_implemented', `This server does not implement ${method}.`)
  try {
    return toRequest(req, signal, maxBodyBytes)
  } catch (error) {
    if (error instanceof TypeError) return new HttpProblem(400, 'validation', `The request's Host or path is not valid: ${JSON.stringify(`${req.headers.host ?? ''}${req.url ?? ''}`.slice(0, 200))}.`)
    throw error
  }
}

export function toRequest(req: IncomingMessage, signal: AbortSignal, maxBodyBytes: number): Request {
  const host = req.headers.host && /^[\w.-]+(:\d+)?$|^\[[\da-f:.]+\](:\d+)?$/i.test(req.headers.host) ? req.headers.host : 'localhost'
  // Joined as text: resolving `//x/y` against a base would read `x` as a host. An impossible port
  // (localhost:99999) makes this throw a TypeError.
  const url = new URL(`http://${host}${safePath(req.url)}`)
  const headers = new Headers()
  for (let index = 0; index < req.rawHeaders.length; index += 2) {
    headers.append(req.rawHeaders[index]!, req.rawHeaders[index + 1]!)
  }
  const method = req.method ?? 'GET'
  const hasBody = !BODYLESS.has(method) && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)
  return new Request(url, {
    method,
    headers,
    signal,
    ...(hasBody ? { body: bodyStream(req, maxBodyBytes), duplex: 'half' } : {}),
  } as RequestInit)
}

/**
 * The request body as a stream that errors, and stops reading, once it passes `maxBodyBytes`.
 * Reading pauses while the handler does not pull, so a slow consumer holds little in memory.
 */
function bodyStream(req: IncomingMessage, maxBodyBytes: number): ReadableStream<Uint8Array> {
  let received = 0
  let finished = false
  const end = (controller: ReadableStreamDefaultController<Uint8Array>, error?: unknown) => {
    if (finished) return
    finished = true
    req.pause()
    if (error) controller.error(error)
    else controller.close()
  }
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (Number(req.headers['content-length'] ?? 0) > maxBodyBytes) {
          end(controller, tooLarge(maxBodyBytes))
          return
        }
        req.pause()
        req.on('data', (chunk: Buffer) => {
          if (finished) return
          received += chunk.length
          if (received > maxBodyBytes) {
            end(controller, tooLarge(maxBodyBytes))
            return
          }
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) req.pause()
        })
        req.once('end', () => end(controller))
        req.once('error', (error) => end(controller, error))
        req.once('close', () => end(controller, new Error('The client closed the connection before the body ended.')))
      },
      pull() {
        if (!finished) req.resume()
      },
      cancel() {
        finished = true
        req.pause()
      },
    },
    { highWaterMark: 1 },
  )
}

async function writeResponse(req: IncomingMessage, res: ServerResponse, response: Response, disconnected: AbortSignal, options: AdapterOptions): Promise<void> {
  const headers: Record<string, string | string[]> = {}
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') headers[key] = value
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length) headers['set-cookie'] = cookies
  // A body left unread (refused as too large, or not wanted) is not read to the end: the
  // connection closes instead.
  if (!req.complete) headers.connection = 'close'
  res.writeHead(response.status, response.statusText || undefined, headers)

  const body = response.body
  // HEAD wants no body; a client already gone (it left while the handler worked) reads none: an
  // event stream is cancelled now rather than followed to its end.
  if (!body || req.method === 'HEAD' || disconnected.aborted) {
    await body?.cancel()
    res.end()
    return
  }
  const streaming = response.headers.get('content-type')?.startsWith('text/event-stream') ?? false
  // An event stream may have nothing to send for a while (a follower of a paused reply): its
  // client learns at once that it is attached, not at the first event or heartbeat. When events
  // are ready at once (a new chat's start), the headers go out with them in one write instead.
  let wroteBody = false
  if (streaming) setImmediate(() => void (wroteBody || res.destroyed || res.flushHeaders()))
  const writeTimer = streaming ? undefined : setTimeout(() => res.destroy(new Error('WRITE_TIMEOUT reached')), options.writeTimeoutMs)
  const reader = body.getReader()
  const stopReading = () => void reader.cancel().catch(() => {})
  // Chunks that are ready together (the events of a burst, or of a short reply) leave in one
  // socket write: the socket is corked until the microtasks that read them have run.
  let corked = false
  const uncork = () => {
    if (!corked) return
    corked = false
    res.uncork()
  }
  disconnected.addEventListener('abort', stopReading, { once: true })
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (res.destroyed) {
        await reader.cancel()
        return
      }
      wroteBody = true
      if (!corked) {
        res.cork()
        corked = true
        process.nextTick(uncork)
      }
      // An event stream has no overall deadline, but a client that reads nothing for WRITE_TIMEOUT is gone.
      if (!res.write(value) && !(await drained(res, streaming ? options.writeTimeoutMs : Infinity))) {
        res.destroy(new Error('WRITE_TIMEOUT reached: the client stopped reading'))
        await reader.cancel()
        return
      }
    }
    // end() while corked would drop what is buffered (node:http, chunked): uncork first.
    if (corked) uncork()
    res.end()
  } catch (error) {
    if (!disconnected.aborted) throw error
  } finally {
    clearTimeout(writeTimer)
    disconnected.removeEventListener('abort', stopReading)
  }
}

/** Resolves with true when `res` can take more or is gone, or with false once `timeoutMs` passed without that. */
function drained(res: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => done(false), timeoutMs) : undefined
    const onDrain = () => done(true)
    function done(drainedInTime: boolean) {
      clearTimeout(timer)
      res.off('drain', onDrain)
      res.off('close', onDrain)
      resolve(drainedInTime)
    }
    res.on('drain', onDrain)
    res.on('close', onDrain)
  })
}

function safePath(url: string | undefined): string {
  return url?.startsWith('/') ? url : '/'
}
