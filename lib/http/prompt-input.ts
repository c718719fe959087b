import * as v from 'valibot'
import { jsonObject, parseInput, strictMessage, uuid, wellFormedText, withinChars } from './validate.ts'

/** How many prompts one user keeps: enough for a library, few enough to list in one answer. */
export const MAX_SAVED_PROMPTS = 500
/** A prompt's text, in characters (code points). */
export const MAX_PROMPT_CHARS = 20_000

const title = v.pipe(
  wellFormedText(),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.check((text) => withinChars(text, 100), 'must be at most 100 characters'),
)
const content = v.pipe(
  wellFormedText(),
  v.check((text) => text.trim().length > 0, 'must not be empty'),
  v.check((text) => withinChars(text, MAX_PROMPT_CHARS), `must be at most ${MAX_PROMPT_CHARS} characters`),
)
const knownFields = strictMessage('is not a known field', 'the body must be a JSON object')

/** POST /v1/prompts: a title (1..100 characters, trimmed) and the text. */
export const NewPromptBody = jsonObject(v.strictObject({ title, content }, knownFields), 'the body must be a JSON object')

/** PATCH /v1/prompts/{id}: a new title, a new text, or both. */
export const PromptChangeBody = jsonObject(v.pipe(
  v.strictObject({ title: v.optional(title), content: v.optional(content) }, knownFields),
  v.check((body) => body.title !== undefined || body.content !== undefined, 'must change something: title or content'),
), 'the body must be a JSON object')

/** A prompt id from the path: a UUID (any case), else a 400. */
export const promptIdFrom = (params: Record<string, string>): string =>
  parseInput(v.object({ id: v.pipe(uuid('must be a UUID'), v.toLowerCase()) }), params, 'prompt id').id
