import * as v from 'valibot'
import { HttpProblem } from '../shared/problem.ts'

/**
 * Keyset cursors: the sort key of the last row of a page, as base64url JSON. Clients treat them as
 * opaque; a cursor that does not decode to the expected shape is a 400.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url')
}

export function decodeCursor<TSchema extends v.GenericSchema>(cursor: string | undefined, schema: TSchema): v.InferOutput<TSchema> | null {
  if (cursor === undefined) return null
  let key: unknown
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    key = undefined
  }
  const result = v.safeParse(schema, key)
  if (!/^[\w-]+$/.test(cursor) || !result.success) {
    throw new HttpProblem(400, 'validation', 'The cursor is not one this server gave out.', {
      errors: [{ path: 'cursor', message: 'must be a next_cursor value from a previous page' }],
    })
  }
  return result.output
}

const timestampString = v.pipe(v.string(), v.isoTimestamp())

const uuid = v.pipe(v.string(), v.uuid())
export const SESSION_CURSOR = v.strictTuple([timestampString, uuid])
/** Tagged, so a cursor of one order is refused by the other instead of read wrongly. */
export const CREATED_SESSION_CURSOR = v.pipe(
  v.strictTuple([v.literal('created'), timestampString, uuid]),
  v.transform(([, createdAt, id]): [string, string] => [createdAt, id]),
)
export const MESSAGE_CURSOR = v.strictTuple([timestampString, v.pipe(v.number(), v.integer(), v.minValue(1))])
