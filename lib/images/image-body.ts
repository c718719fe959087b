import { Worker } from 'node:worker_threads'
import { forEachChunk, jsonBodyOf, parseJsonBytes } from '../http/body.ts'
import { HttpProblem } from '../shared/problem.ts'

/** lib/images/image-body-worker.ts bundled (build.mjs); undefined when running from source. */
declare const __IMAGE_BODY_WORKER__: string | undefined

/** A body up to this size is parsed on the server's thread (about a millisecond); a larger one in a worker. */
export const INLINE_BODY_BYTES = 256 * 1024

/**
 * The JSON body of a route that takes images (docs/images.md), or undefined when it has none;
 * refuses what readJsonBody refuses. A body past INLINE_BODY_BYTES goes, a chunk at a time as it
 * arrives, to a worker thread that parses it and decodes its images' base64 (their bytes come
 * back without a copy), so that megabytes of photos never hold the event loop.
 */
export async function readImageBody(request: Request, maxBytes: number): Promise<unknown> {
  const body = await jsonBodyOf(request, maxBytes)
  if (!body) return undefined
  const held: Uint8Array[] = []
  let heldBytes = 0
  let worker: Worker | undefined
  try {
    // A chunk goes over as a copy of its own bytes, moved: posting the chunk itself would copy
    // the whole buffer it may be a view of.
    const send = (to: Worker, chunk: Uint8Array) => {
      const own = new Uint8Array(chunk)
      to.postMessage(own, [own.buffer])
    }
    const size = await forEachChunk(body, maxBytes, (chunk) => {
      if (worker) return send(worker, chunk)
      held.push(chunk)
      heldBytes += chunk.byteLength
      if (heldBytes <= INLINE_BODY_BYTES) return
      worker = typeof __IMAGE_BODY_WORKER__ === 'undefined'
        ? new Worker(new URL('./image-body-worker.ts', import.meta.url))
        : new Worker(__IMAGE_BODY_WORKER__, { eval: true })
      for (const earlier of held.splice(0)) send(worker, earlier)
    })
    if (!worker) {
      if (size === 0) return undefined
      const parsed = parseJsonBytes(Buffer.concat(held, heldBytes))
      if (typeof parsed === 'string') throw new HttpProblem(400, 'validation', parsed)
      return parsed.value
    }
    const reading = worker
    const answer = await new Promise<{ value?: unknown; error?: string }>((resolve, reject) => {
      reading.once('message', resolve)
      reading.once('error', reject)
      reading.postMessage('end')
    })
    if (answer.error !== undefined) throw new HttpProblem(400, 'validation', answer.error)
    return answer.value
  } finally {
    void worker?.terminate()
  }
}
