import { Validator, type Schema } from '@cfworker/json-schema'
import { Worker } from 'node:worker_threads'

/** lib/tools/schema-check-worker.ts bundled (build.mjs); undefined when running from source. */
declare const __SCHEMA_CHECK_WORKER__: string | undefined

/** The longest a check with regular expressions may take; past it the check fails (docs/tools.md). */
export const SCHEMA_CHECK_TIMEOUT_MS = 250

/** What a check of a call's arguments came to. */
export type CheckOutcome =
  | { valid: boolean; errors: Array<{ instanceLocation: string; error: string }> }
  /** The schema cannot be used by the validator (a bad `pattern`, an unresolvable `$ref`). */
  | { unusable: string }
  /** It ran out of SCHEMA_CHECK_TIMEOUT_MS (a `pattern` that backtracks). */
  | { timedOut: true }

/** Whether a schema holds regular expressions, whose cost a schema's author decides. */
const hasRegex = (schemaJson: string) => /"(pattern|patternProperties)"\s*:/.test(schemaJson)

/**
 * Checks tool arguments against the tool's own JSON Schema (@cfworker/json-schema). A schema
 * without regular expressions is checked here, in time bounded by the arguments; one with them in
 * a worker thread, one check at a time, within SCHEMA_CHECK_TIMEOUT_MS: a catastrophic `pattern`
 * (`^(a+)+$`) holds that thread, which is ended, never the server's event loop.
 */
export class ArgumentChecker {
  private readonly inline = new Map<string, Validator>()
  private worker: { thread: Worker; ready: Promise<void> } | undefined
  /** Checks in the worker run one after the other. */
  private queue: Promise<unknown> = Promise.resolve()

  check(schema: Record<string, unknown>, args: unknown): Promise<CheckOutcome> {
    const schemaJson = JSON.stringify(schema)
    if (!hasRegex(schemaJson)) return Promise.resolve(this.checkHere(schemaJson, schema, args))
    const checked = this.queue.then(() => this.checkInWorker(schemaJson, args))
    this.queue = checked.catch(() => {})
    return checked
  }

  private checkHere(schemaJson: string, schema: Record<string, unknown>, args: unknown): CheckOutcome {
    try {
      let validator = this.inline.get(schemaJson)
      if (!validator) this.inline.set(schemaJson, (validator = new Validator(schema as Schema, '2020-12', false)))
      const { valid, errors } = validator.validate(args)
      return { valid, errors }
    } catch (error) {
      return { unusable: (error as Error).message }
    }
  }

  private async checkInWorker(schemaJson: string, args: unknown): Promise<CheckOutcome> {
    const started = (this.worker ??= this.startWorker())
    const { thread } = started
    thread.ref()
    try {
      await started.ready
    } catch (error) {
      if (this.worker === started) this.worker = undefined
      return { unusable: (error as Error).message }
    }
    return new Promise<CheckOutcome>((resolve) => {
      const done = (outcome: CheckOutcome) => {
        clearTimeout(timer)
        thread.off('message', done)
        thread.off('error', failed)
        if (this.worker === started) thread.unref()
        resolve(outcome)
      }
      const failed = (error: Error) => {
        if (this.worker === started) this.worker = undefined
        done({ unusable: error.message })
      }
      const timer = setTimeout(() => {
        // A regular expression cannot be interrupted: the thread running it goes.
        if (this.worker === started) this.worker = undefined
        void thread.terminate()
        done({ timedOut: true })
      }, SCHEMA_CHECK_TIMEOUT_MS)
      thread.on('message', done)
      thread.on('error', failed)
      thread.postMessage({ schema: schemaJson, args })
    })
  }

  private startWorker(): { thread: Worker; ready: Promise<void> } {
    const thread = typeof __SCHEMA_CHECK_WORKER__ === 'undefined'
      ? new Worker(new URL('./schema-check-worker.ts', import.meta.url))
      : new Worker(__SCHEMA_CHECK_WORKER__, { eval: true })
    thread.unref()
    // Its first message says it has loaded: a check's time starts then, not with the thread's start-up.
    const ready = new Promise<void>((resolve, reject) => {
      thread.once('message', () => resolve())
      thread.once('error', reject)
    })
    ready.catch(() => {})
    return { thread, ready }
  }

  /** Ends the worker, if one runs. */
  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    await worker?.thread.terminate()
  }
}
