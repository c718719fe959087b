/**
 * The worker thread that reads a large body carrying images (lib/images/image-body.ts starts
 * it): it gathers the chunks, decodes and parses them, and turns each image's base64 into bytes
 * handed back without a copy, so that the server's thread never holds a body of megabytes.
 */
import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { parseJsonBytes } from '../http/body.ts'
import { base64Bytes, ENCODED_IMAGE, IMAGE_DIGEST, isImageText } from './image-text.ts'

const port = parentPort!
const chunks: Uint8Array[] = []
let size = 0

/**
 * Where a body carries images: the top-level `images` list of POST /v1/chat, and the
 * `image_url` of a content part (Responses' string, Chat Completions' `{url}`).
 */
type Place = 'images' | 'image_url' | 'other'
const placeOf = (key: string, parent: Place, depth: number): Place =>
  key === 'images' && depth === 0 ? 'images' : key === 'image_url' || (key === 'url' && parent === 'image_url') ? 'image_url' : 'other'

/** Replaces the images' text in `value` (strings `isImageText` takes, where images go) with their bytes; the bytes' buffers, to transfer. */
function withImageBytes(value: unknown, place: Place, depth: number, buffers: ArrayBuffer[]): unknown {
  if (typeof value === 'string') {
    if (place === 'other' || !isImageText(value, place === 'images')) return value
    const decoded = base64Bytes(value)
    // Text that is not base64 stays as it is: the server's thread refuses it, naming where it is.
    if (!decoded) return value
    // Its own buffer, to transfer (a small one may sit in Node's shared pool).
    const bytes = decoded.byteOffset === 0 && decoded.byteLength === decoded.buffer.byteLength ? decoded : new Uint8Array(decoded)
    buffers.push(bytes.buffer as ArrayBuffer)
    return { [ENCODED_IMAGE]: bytes, [IMAGE_DIGEST]: createHash('sha256').update(bytes).digest('base64url') }
  }
  if (Array.isArray(value)) return value.map((inner) => withImageBytes(inner, place === 'images' ? 'images' : 'other', depth + 1, buffers))
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>
    for (const key of Object.keys(object)) object[key] = withImageBytes(object[key], placeOf(key, place, depth), depth + 1, buffers)
    return object
  }
  return value
}

port.on('message', (message: Uint8Array | 'end') => {
  if (message !== 'end') {
    chunks.push(message)
    size += message.byteLength
    return
  }
  const parsed = parseJsonBytes(Buffer.concat(chunks, size))
  chunks.length = 0
  if (typeof parsed === 'string') {
    port.postMessage({ error: parsed })
    return
  }
  const buffers: ArrayBuffer[] = []
  const value = withImageBytes(parsed.value, 'other', 0, buffers)
  port.postMessage({ value }, buffers)
})
