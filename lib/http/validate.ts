import * as v from 'valibot'
import { HttpProblem } from '../shared/problem.ts'

/**
 * Checks `input` against `schema` and returns the typed output, or throws a 400 `validation`
 * problem listing each issue as `{path, message}`.
 */
export function parseInput<TSchema extends v.GenericSchema>(schema: TSchema, input: unknown, what: string): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, input)
  if (result.success) return result.output
  const errors = result.issues.map((issue) => ({ path: v.getDotPath(issue) ?? '', message: issue.message }))
  const first = errors[0]!
  throw new HttpProblem(400, 'validation', `The ${what} is invalid: ${first.path ? `${first.path}: ` : ''}${first.message}`, { errors })
}

/**
 * `input` checked against `schema` as the field at `path` of a larger body (such as `input[3]`):
 * a 400 whose errors and `param` name the field inside it (`input[3].content`).
 */
export function parseAt<TSchema extends v.GenericSchema>(schema: TSchema, input: unknown, path: string): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, input)
  if (result.success) return result.output
  const errors = result.issues.map((issue) => ({
    path: path + (issue.path ?? []).map(({ key }) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join(''),
    message: issue.message,
  }))
  throw new HttpProblem(400, 'validation', `${errors[0]!.path}: ${errors[0]!.message}`, { errors })
}

/** Characters as a person counts them (code points), as MAX_MESSAGE_CHARS is counted. */
export function characterCount(text: string): number {
  let count = 0
  for (const _ of text) count++
  return count
}

/** Whether `text` has at most `max` characters; counted only when its UTF-16 length could be over. */
export const withinChars = (text: string, max: number): boolean => text.length <= max || characterCount(text) <= max

/** Query parameters as an object; a repeated parameter keeps every value, which schemas refuse. */
export function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null)
  for (const [key, value] of url.searchParams) {
    const seen = query[key]
    query[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
  }
  return query
}

export const uuid = (message = 'must be a UUID') => v.pipe(v.string(message), v.uuid(message))

/** A whole number given as a query string, such as `limit=50`. */
export const queryInteger = (min: number, max: number, fallback: number) =>
  v.optional(
    v.pipe(
      v.string(`must be a whole number from ${min} to ${max}`),
      v.regex(/^\d{1,9}$/, `must be a whole number from ${min} to ${max}`),
      v.transform(Number),
      v.minValue(min, `must be a whole number from ${min} to ${max}`),
      v.maxValue(max, `must be a whole number from ${min} to ${max}`),
    ),
    String(fallback),
  )

/** `schema` for JSON objects only: valibot's object schemas would also take an array. */
export const jsonObject = <TSchema extends v.GenericSchema>(schema: TSchema, message: string) =>
  v.pipe(
    v.custom<unknown>((input) => typeof input === 'object' && input !== null && !Array.isArray(input), message),
    schema as v.GenericSchema<unknown, v.InferOutput<TSchema>>,
  )

/** A session id from the path: a UUID (any case; stored lower-case), else a 400. */
export function sessionIdFrom(params: Record<string, string>): string {
  return parseInput(v.object({ id: v.pipe(uuid('must be a UUID'), v.toLowerCase()) }), params, 'session id').id
}

/**
 * Text that SQLite can store exactly: a lone UTF-16 surrogate has no UTF-8 form and would come
 * back as U+FFFD, so it is refused instead of silently changed.
 */
export const wellFormedText = (message = 'must be a string') =>
  v.pipe(v.string(message), v.check((text) => text.isWellFormed(), 'must be well-formed Unicode (it has a lone surrogate)'))

/** The message of a strict object's issues: an unknown key, or input that is not an object. */
export const strictMessage = (unknownKey: string, notAnObject: string) => (issue: v.BaseIssue<unknown>) =>
  issue.expected === 'never' ? unknownKey : notAnObject
