import * as v from 'valibot'
import { jsonObject } from '../http/validate.ts'

/** Collections one user may keep. */
export const MAX_COLLECTIONS = 1000

/** `{name}`: 1 to 200 characters once trimmed. */
export const CollectionBody = jsonObject(v.object({ name: v.pipe(v.string('must be a string'), v.trim(), v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters')) }), 'must be an object with name')
