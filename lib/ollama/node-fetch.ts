import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { http } from '../shared/node-http-module.ts'

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: Infinity })

/**
 * The part of `fetch` that ollama-js uses, over node:http. It reaches the first byte of Ollama's
 * answer with fewer hops than undici's fetch, which matters on the time-to-first-token path.
 * Failures to connect reject with a TypeError whose `cause` is the socket error, as fetch does.
 */
export const nodeFetch: typeof fetch = (input, init = {}) => send(new URL(input instanceof Request ? input.url : String(input)), init, true)

/**
 * A kept-alive connection Ollama closed while it sat idle (Ollama restarted, or closed it itself)
 * fails the next request sent on it with ECONNRESET or EPIPE before any answer: that request
 * never reached Ollama, so it is sent again, on a connection of its own.
 */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE'])

function send(url: URL, init: RequestInit, pooled: boolean): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const https = url.protocol === 'https:'
    const headers = new Headers(init.headers)
    const request = (https ? httpsRequest : http.request)(url, {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(headers),
      // The retry of a request that met a stale connection opens a new one (any pooled one may be stale too).
      agent: pooled ? (https ? httpsAgent : httpAgent) : false,
      ...(init.signal ? { signal: init.signal } : {}),
    })
    request.once('response', (res: IncomingMessage) => {
      const responseHeaders = new Headers()
      for (let index = 0; index < res.rawHeaders.length; index += 2) responseHeaders.append(res.rawHeaders[index]!, res.rawHeaders[index + 1]!)
      const body = res.statusCode === 204 || res.statusCode === 304 || init.method === 'HEAD' ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>)
      resolve(new Response(body, { status: res.statusCode ?? 502, statusText: res.statusMessage ?? '', headers: responseHeaders }))
    })
    request.once('error', (error: NodeJS.ErrnoException) => {
      if (pooled && request.reusedSocket && STALE_CONNECTION.has(error.code ?? '') && !init.signal?.aborted) {
        send(url, init, false).then(resolve, reject)
        return
      }
      reject(error.name === 'AbortError' ? error : new TypeError('fetch failed', { cause: error }))
    })
    if (typeof init.body === 'string' && init.body.includes(`"${IMAGE_REFERENCE}`)) void writeWithImages(request, init.body).catch((error: Error) => request.destroy(error))
    else request.end(typeof init.body === 'string' ? init.body : undefined)
  })
}

/**
 * Images go to Ollama as base64 in its JSON. Built by ollama-js, that JSON would be a string of
 * megabytes, made and scanned in one go on the event loop; instead ollama-js is given a short
 * reference per image (OllamaClient.startChat makes them), and the body is written here with each
 * reference replaced by the image's base64, a slice at a time.
 */
const IMAGE_REFERENCE = 'chat-ollama-image:'
const images = new Map<string, Uint8Array>()
/** Bytes a base64 slice covers: a multiple of 3, so slices join without padding between them. */
const SLICE_BYTES = 3 * 16 * 1024

/** A reference to `bytes` for one request body; `release` it once the request is sent (or failed). */
export function imageReference(bytes: Uint8Array): { reference: string; release(): void } {
  const reference = `${IMAGE_REFERENCE}${randomUUID()}`
  images.set(reference, bytes)
  return { reference, release: () => images.delete(reference) }
}

async function writeWithImages(request: ClientRequest, body: string): Promise<void> {
  const parts = body.split(new RegExp(`"(${IMAGE_REFERENCE}[0-9a-f-]{36})"`))
  for (const [index, part] of parts.entries()) {
    // Odd parts are the references the split captured.
    const bytes = index % 2 === 1 ? images.get(part) : undefined
    if (index % 2 === 0 || !bytes) {
      request.write(index % 2 === 0 ? part : JSON.stringify(part))
      continue
    }
    request.write('"')
    for (let offset = 0; offset < bytes.byteLength; offset += SLICE_BYTES) {
      const slice = Buffer.from(bytes.buffer, bytes.byteOffset + offset, Math.min(SLICE_BYTES, bytes.byteLength - offset))
      if (!request.write(slice.toString('base64'))) await once(request, 'drain')
    }
    request.write('"')
  }
  request.end()
}
