import { HttpProblem } from '../shared/problem.ts'

/** Arrays and objects inside one another, at most: every reader of a body (valibot, Ollama's schema handling) recurses. */
export const MAX_JSON_DEPTH = 64

/**
 * Whether a parsed JSON value nests arrays and objects deeper than `limit`. It stops descending
 * past the limit, so it is bounded whatever it is given (V8's JSON.parse itself does not recurse),
 * and costs one step per value, not per character.
 */
function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (limit === 0) return true
  for (const inner of Array.isArray(value) ? value : Object.values(value)) {
    if (nestedDeeperThan(inner, limit - 1)) return true
  }
  return false
}

export const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i

/**
 * The request's JSON body, or undefined when it has none. Refuses a body that is not JSON (415),
 * one over `maxBytes` (413, reading no further than the limit), and malformed JSON or UTF-8 (400).
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
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
  if (bytes.length === 0) return undefined
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
  if (nestedDeeperThan(parsed, MAX_JSON_DEPTH)) {
    throw new HttpProblem(400, 'validation', `The body is nested deeper than ${MAX_JSON_DEPTH} levels.`)
  }
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
  return new HttpProblem(413, 'payload_too_large', `The body is larger than ${maxBytes} bytes (MAX_BODY_BYTES).`)
}
