import * as v from 'valibot'
import { jsonObject, strictMessage, wellFormedText } from './validate.ts'

/** A session title: 1..200 characters after trimming, stored trimmed. */
export const title = v.pipe(
  wellFormedText(),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.check((text) => [...text].length <= 200, 'must be at most 200 characters'),
)

const knownFields = strictMessage('is not a known field', 'the body must be a JSON object')

export const CreateSessionBody = jsonObject(
  v.strictObject({ title: v.optional(title), system: v.optional(wellFormedText()) }, knownFields),
  'the body must be a JSON object',
)

export const RenameSessionBody = jsonObject(v.strictObject({ title }, knownFields), 'the body must be a JSON object')
