/**
 * Input a tool asks its user for mid-call (MCP elicitation, docs/tools.md "Input for a tool"): the
 * calls waiting for an answer on this instance, and the check of an answer against the form the
 * server asked with.
 */
import type { ToolInputAnswer } from '../store/input-store.ts'

/** Why a wait for input ended. */
export type InputWaitEnd = 'answered' | 'timeout' | 'stopped'

/** The calls of this instance waiting for their user's input, each woken when its answer is recorded (here or on another instance). */
export class InputWaiters {
  private readonly waiting = new Map<string, () => void>()

  /** Resolves once `id` is answered (`answered(id)`), after `ms`, or when `signal` aborts. */
  wait(id: string, ms: number, signal: AbortSignal): Promise<InputWaitEnd> {
    return new Promise((resolve) => {
      const end = (why: InputWaitEnd) => {
        clearTimeout(timer)
        signal.removeEventListener('abort', stopped)
        this.waiting.delete(id)
        resolve(why)
      }
      const stopped = () => end('stopped')
      const timer = setTimeout(() => end('timeout'), ms)
      if (signal.aborted) return end('stopped')
      signal.addEventListener('abort', stopped, { once: true })
      this.waiting.set(id, () => end('answered'))
    })
  }

  /** The answer of `id` is recorded: its call, if it waits here, goes on. */
  answered(id: string): void {
    this.waiting.get(id)?.()
  }
}

/** Most fields a form may have, and the longest text a field may take (bounds on what a server can make a user send). */
export const MAX_FORM_FIELDS = 32
export const MAX_FIELD_CHARS = 10_000
/** The longest message a request may show its user. */
export const MAX_INPUT_MESSAGE_CHARS = 2_000

type Schema = Record<string, any>
const isObject = (value: unknown): value is Schema => typeof value === 'object' && value !== null && !Array.isArray(value)

/** The choices of an enum field: `enum`, or `oneOf`/`anyOf` of `{const, title}` (SEP-1330), or an array's `items` of either. */
function choicesOf(field: Schema): string[] | undefined {
  const of = (schema: Schema): string[] | undefined => {
    if (Array.isArray(schema.enum)) return schema.enum.filter((choice: unknown): choice is string => typeof choice === 'string')
    const options = Array.isArray(schema.oneOf) ? schema.oneOf : Array.isArray(schema.anyOf) ? schema.anyOf : undefined
    return options?.filter(isObject).map((option: Schema) => option.const).filter((choice: unknown): choice is string => typeof choice === 'string')
  }
  return field.type === 'array' && isObject(field.items) ? of(field.items) : of(field)
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const DATE = /^\d{4}-\d{2}-\d{2}$/

/** Why `value` does not fit a string field's format, if it does not. */
function formatProblem(format: unknown, value: string): string | undefined {
  if (format === 'email' && !EMAIL.test(value)) return 'is not an email address'
  if (format === 'date' && (!DATE.test(value) || Number.isNaN(Date.parse(value)))) return 'is not a date (YYYY-MM-DD)'
  if (format === 'date-time' && Number.isNaN(Date.parse(value))) return 'is not a date and time'
  if (format === 'uri') {
    try {
      new URL(value)
    } catch {
      return 'is not an address (URI)'
    }
  }
  return undefined
}

/**
 * An accepted answer's values checked against the form (`requestedSchema`: a flat object of
 * strings, numbers, integers, booleans and enums): the values with the form's defaults for those
 * left out, or the problems, each naming its field.
 */
export function checkAnswer(schema: Record<string, unknown>, content: Record<string, unknown>): { content: NonNullable<ToolInputAnswer['content']> } | { problems: string[] } {
  const fields: Schema = isObject(schema.properties) ? schema.properties : {}
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  const problems: string[] = []
  const checked: NonNullable<ToolInputAnswer['content']> = {}
  for (const name of Object.keys(content)) if (!Object.hasOwn(fields, name)) problems.push(`${name}: the form has no such field`)
  for (const [name, field] of Object.entries(fields)) {
    if (!isObject(field)) continue
    const given = Object.hasOwn(content, name) ? content[name] : field.default
    if (given === undefined || given === null) {
      if (required.has(name)) problems.push(`${name}: is required`)
      continue
    }
    const choices = choicesOf(field)
    const problem = ((): string | undefined => {
      if (field.type === 'boolean') return typeof given === 'boolean' ? undefined : 'must be true or false'
      if (field.type === 'number' || field.type === 'integer') {
        if (typeof given !== 'number' || !Number.isFinite(given) || (field.type === 'integer' && !Number.isInteger(given))) return `must be ${field.type === 'integer' ? 'an integer' : 'a number'}`
        if (typeof field.minimum === 'number' && given < field.minimum) return `must be at least ${field.minimum}`
        if (typeof field.maximum === 'number' && given > field.maximum) return `must be at most ${field.maximum}`
        return undefined
      }
      if (field.type === 'array') {
        if (!Array.isArray(given) || !given.every((item) => typeof item === 'string' && choices?.includes(item))) return `must be a list of: ${(choices ?? []).join(', ')}`
        if (typeof field.minItems === 'number' && given.length < field.minItems) return `must have at least ${field.minItems} choices`
        if (typeof field.maxItems === 'number' && given.length > field.maxItems) return `must have at most ${field.maxItems} choices`
        return undefined
      }
      if (typeof given !== 'string') return 'must be text'
      if (given.length > MAX_FIELD_CHARS) return `is longer than ${MAX_FIELD_CHARS} characters`
      if (choices && !choices.includes(given)) return `must be one of: ${choices.join(', ')}`
      if (typeof field.minLength === 'number' && given.length < field.minLength) return `must have at least ${field.minLength} characters`
      if (typeof field.maxLength === 'number' && given.length > field.maxLength) return `must have at most ${field.maxLength} characters`
      return formatProblem(field.format, given)
    })()
    if (problem) problems.push(`${name}: ${problem}`)
    else checked[name] = given as string | number | boolean | string[]
  }
  return problems.length ? { problems } : { content: checked }
}

/** The most JSON a form may take (it is stored, and sent to the page): its titles and descriptions included. */
export const MAX_FORM_CHARS = 16_384

/** Whether a server's form is one this client shows: a flat object of at most MAX_FORM_FIELDS primitive fields, MAX_FORM_CHARS of JSON at most. */
export function isShowableForm(schema: unknown): schema is Record<string, unknown> {
  if (!isObject(schema) || schema.type !== 'object' || !isObject(schema.properties) || JSON.stringify(schema).length > MAX_FORM_CHARS) return false
  const fields = Object.values(schema.properties)
  return fields.length <= MAX_FORM_FIELDS && fields.every((field) => isObject(field) && ['string', 'number', 'integer', 'boolean', 'array'].includes(field.type) && (field.type !== 'array' || choicesOf(field) !== undefined))
}
