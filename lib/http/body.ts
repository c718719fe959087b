import { HttpProblem } from '../shared/problem.ts'

/** Arrays and objects inside one another, at most: every reader of a body (valibot, Ollama's schema handling) recurses. */
export const MAX_JSON_DEPTH = 64

/**
 * What makes a parsed body unfit to go further, if anything: nesting deeper than `depth`
 * (checked without descending past it, so it is bounded whatever it is given; V8's JSON.parse
 * itself does not recurse), or U+0000 in a string or key, which PostgreSQL's `text` cannot hold
 * (refused on both backends, so behaviour does not depend on the store). One step per value.
 */
function unfitJson(value: unknown, depth: number): string | undefined {
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
  const bytes = await readAtMost(request.body, maxBytes)
  return bytes.length === 0 ? undefined : bytes
}

/**
 * The request's JSON body, or undefined when it has none. Refuses what readJsonBytes refuses, and
 * malformed JSON or UTF-8 (400).
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const bytes = await readJsonBytes(request, maxBytes)
  if (bytes === undefined) return undefined
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new HttpProblem(400, 'validation', 'The body is not valid UTF-8.')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new HttpProblem(400, 'validation', `The body is not valid JSON: ${(error as Error).message}`)
  }
  const unfit = unfitJson(parsed, MAX_JSON_DEPTH)
  if (unfit) throw new HttpProblem(400, 'validation', `The body ${unfit}.`)
  return parsed
}

async function readAtMost(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
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
      chunks.push(value)
    }
  } catch (error) {
    if (error instanceof HttpProblem) throw error
    // The adapter ends the body stream with a problem of its own when the limit is crossed.
    throw (error as { cause?: unknown }).cause instanceof HttpProblem ? (error as { cause: HttpProblem }).cause : error
  } finally {
    reader.releaseLock()
  }
  return Buffer.concat(chunks, size)
}

export function tooLarge(maxBytes: number): HttpProblem {
  return new HttpProblem(413, 'payload_too_large', `The body is larger than ${maxBytes} bytes (MAX_BODY_BYTES; IMPORT_MAX_BYTES for POST /v1/import).`)
}
