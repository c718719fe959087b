/**
 * The worker thread that checks tool arguments against schemas with regular expressions in them
 * (lib/tools/argument-check.ts starts it): a `pattern` can backtrack for seconds, and here it holds
 * nothing but this thread, which is ended when a check runs out of time.
 */
import { parentPort } from 'node:worker_threads'
import { Validator, type Schema } from '@cfworker/json-schema'

/** Schemas compiled so far, by their JSON; forgotten past this many. */
const MAX_VALIDATORS = 256

const port = parentPort!
const validators = new Map<string, Validator>()

// Loaded and listening: from here on a check's time is its own.
port.postMessage({ ready: true })

port.on('message', ({ schema, args }: { schema: string; args: unknown }) => {
  let validator = validators.get(schema)
  try {
    if (!validator) {
      if (validators.size >= MAX_VALIDATORS) validators.clear()
      validators.set(schema, (validator = new Validator(JSON.parse(schema) as Schema, '2020-12', false)))
    }
    const { valid, errors } = validator.validate(args)
    port.postMessage({ valid, errors: errors.map(({ instanceLocation, error }) => ({ instanceLocation, error })) })
  } catch (error) {
    port.postMessage({ unusable: (error as Error).message })
  }
})
