import { HttpProblem } from '../shared/problem.ts'

/** Arrays and objects inside one another, at most: every reader of a body (valibot, Ollama's schema handling) recurses. */
export const MAX_JSON_DEPTH = 64

/**
 * What makes a parsed body unfit to go further, if anything: nesting deeper than `depth`
 * (checked without descending past it, so it is bounded whatever it is given; V8's JSON.parse
 * itself does not recurse), or U+0000 in a string or key, which PostgreSQL's `text` cannot hold
 * (refused on both backends, so behaviour does not depend on the store). One step per value.
 */
export function unfitJson(value: unknown, depth: number = MAX_JSON_DEPTH): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? 'holds the character U+0000, which cannot be stored' : undefined
  if (typeof value !== 'object' || value === null) return undefined
  if (depth === 0) return `is nested deeper than ${MAX_JSON_DEPTH} levels`
  if (Array.isArray(value)) {
    for (const inner of value) {
      const unfit = unfitJson(inner, depth - 1)
      if (unfit) return unfit
    }
    return undefined
  }
  for (const [key, inner] of Object.entries(value)) {
    const unfit = unfitJson(key, depth - 1) ?? unfitJson(inner, depth - 1)
    if (unfit) return unfit
  }
  return undefined
}

export const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * The request's JSON body as bytes, or undefined when it has none. Refuses a body that is not
 * JSON (415) and one over `maxBytes` (413, reading no further than the limit).
 */
export async function readJsonBytes(request: Request, maxBytes: number): Promise<Uint8Array | undefined> {
  const body = await jsonBodyOf(request, maxBytes)
  if (!body) return undefined
  const chunks: Uint8Array[] = []
  const size = await forEachChunk(body, maxBytes, (chunk) => chunks.push(chunk))
  return size === 0 ? undefined : Buffer.concat(chunks, size)
}

/**
 * The request's body stream when it has one that may be JSON (undefined when it has none);
 * refuses one that is not JSON (415) or declares more than `maxBytes` (413).
 */
export async function jsonBodyOf(request: Request, maxBytes: number): Promise<ReadableStream<Uint8Array> | undefined> {
  if (!request.body || request.headers.get('content-length') === '0') return undefined
  const contentType = request.headers.get('content-type') ?? ''
  if (!JSON_TYPE.test(contentType)) {
    await request.body.cancel().catch(() => {})
    throw new HttpProblem(415, 'unsupported_media_type', `The body must be application/json, not ${contentType ? JSON.stringify(contentType) : 'untyped'}.`)
  }
  const declared = Number(request.headers.get('content-length') ?? 0)
  if (declared > maxBytes) {
    await request.body.cancel().catch(() => {})
    throw tooLarge(maxBytes)
  }
  return request.body
}

/**
 * The request's JSON body, or undefined when it has none. Refuses what readJsonBytes refuses, and
 * malformed JSON or UTF-8 (400).
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const bytes = await readJsonBytes(request, maxBytes)
  if (bytes === undefined) return undefined
  const parsed = parseJsonBytes(bytes)
  if (typeof parsed === 'string') throw new HttpProblem(400, 'validation', parsed)
  return parsed.value
}

/** JSON bytes as a value fit to go further; or, as a string, why not (the detail of a 400). */
export function parseJsonBytes(bytes: Uint8Array): { value: unknown } | string {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return 'The body is not valid UTF-8.'
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    return `The body is not valid JSON: ${(error as Error).message}`
  }
  const unfit = unfitJson(value, MAX_JSON_DEPTH)
  return unfit ? `The body ${unfit}.` : { value }
}

/** Hands each chunk of `body` to `onChunk` as it arrives, at most `maxBytes` in all (413 past it); the size read. */
export async function forEachChunk(body: ReadableStream<Uint8Array>, maxBytes: number, onChunk: (chunk: Uint8Array) => void): Promise<number> {
  const reader = body.getReader()
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        await reader.cancel()
        throw tooLarge(maxBytes)
      }
      onChunk(value)
    }
  } catch (error) {
    if (error instanceof HttpProblem) throw error
    // The adapter ends the body stream with a problem of its own when the limit is crossed.
    throw (error as { cause?: unknown }).cause instanceof HttpProblem ? (error as { cause: HttpProblem }).cause : error
  } finally {
    reader.releaseLock()
  }
  return size
}

export function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(413, 'payload_too_large', `The body is larger than ${maxBytes} bytes (MAX_BODY_BYTES; IMPORT_MAX_BYTES for POST /v1/import).`)
}
