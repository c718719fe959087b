import * as v from 'valibot'
import { jsonObject, strictMessage } from '../http/validate.ts'

const knownFields = strictMessage('is not a known field', 'the body must be a JSON object')

export const SignInBody = jsonObject(
  v.strictObject({ api_key: v.pipe(v.string('must be a string'), v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200, 'is too long')) }, knownFields),
  'the body must be a JSON object',
)

export const NewUserBody = jsonObject(
  v.strictObject(
    {
      name: v.pipe(v.string('must be a string'), v.trim(), v.nonEmpty('must not be empty')),
      role: v.optional(v.picklist(['admin', 'user'], 'must be admin or user'), 'user'),
    },
    knownFields,
  ),
  'the body must be a JSON object',
)

export const NewKeyBody = jsonObject(
  v.strictObject(
    {
      user: v.pipe(v.string('must be a string'), v.trim(), v.nonEmpty('must not be empty')),
      name: v.optional(v.pipe(v.string('must be a string'), v.trim(), v.nonEmpty('must not be empty'), v.maxLength(100, 'is too long'))),
      /** Go duration such as 720h; absent: the key does not expire. */
      expires_in: v.optional(v.string('must be a duration such as 720h')),
    },
    knownFields,
  ),
  'the body must be a JSON object',
)
