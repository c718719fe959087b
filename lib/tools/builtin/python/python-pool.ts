import { Worker } from 'node:worker_threads'
import { abortable } from '../../../shared/abortable.ts'
import type { Logger } from '../../../observability/log.ts'

declare const __PYTHON_WORKER__: string | undefined

/** What one program printed and came to. */
export interface PythonOutcome {
  stdout: string
  stderr: string
  /** The repr of the last expression's value, when it has one other than None. */
  value: string | null
  /** Python's traceback, or why the program was stopped. */
  error: string | null
  /** Output past the limit was dropped. */
  cut: boolean
}

/** The JavaScript heap of an interpreter's thread (Python's own memory is its WebAssembly heap, PYTHON_MEMORY). */
const THREAD_HEAP_MB = 128
/** How long a call waits at most for an interpreter to start (a few seconds on a small machine). */
const START_TIMEOUT_MS = 60_000

interface Interpreter {
  thread: Worker
  ready: Promise<void>
}

/**
 * Python interpreters kept started (docs/builtin-tools.md "Python"): Pyodide takes seconds to
 * start, so `size` of them wait, each in its own worker thread (lib/tools/builtin/python/python-worker.ts).
 * A call takes one and ends it afterwards: each program starts clean, and nothing one leaves behind
 * (files, modules, threads) reaches the next. A new one starts in its place at once.
 */
export class PythonPool {
  private readonly waiting: Interpreter[] = []
  private readonly running = new Set<Worker>()
  private closed = false
  private readonly size: number
  private readonly memoryBytes: number
  private readonly maxOutputBytes: number
  private readonly log: Logger

  constructor(options: { size: number; memoryBytes: number; maxOutputBytes: number; log: Logger }) {
    this.size = options.size
    this.memoryBytes = options.memoryBytes
    this.maxOutputBytes = options.maxOutputBytes
    this.log = options.log
  }

  /**
   * Starts interpreters until `size` wait. Called when run_python may be used soon (a turn offers
   * it, the server starts), not when the app is made: a function that never runs Python (on a
   * FaaS platform, each endpoint is a process) starts none.
   */
  warm(): void {
    while (!this.closed && this.waiting.length < this.size) this.waiting.push(this.start())
  }

  private start(): Interpreter {
    const workerData = { pyodideUrl: import.meta.resolve('pyodide'), memoryBytes: this.memoryBytes, maxOutputBytes: this.maxOutputBytes }
    // An empty environment: none of the server's variables (its secrets) are in the thread's process.env.
    const options = { workerData, env: {}, resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB, maxYoungGenerationSizeMb: 16 } }
    const thread = typeof __PYTHON_WORKER__ === 'undefined'
      ? new Worker(new URL('./python-worker.ts', import.meta.url), options)
      : new Worker(__PYTHON_WORKER__, { ...options, eval: true })
    // Waiting interpreters do not keep the process alive.
    thread.unref()
    const ready = new Promise<void>((resolve, reject) => {
      thread.once('message', (message: { ready?: true; failed?: string }) => (message.ready ? resolve() : reject(new Error(`Python could not start: ${message.failed}`))))
      thread.once('error', (error) => reject(new Error(`Python could not start: ${error.message}`)))
      thread.once('exit', () => reject(new Error('Python could not start: its thread stopped')))
    })
    ready.catch((error: Error) => this.log.warn('python interpreter failed to start', { error: error.message }))
    return { thread, ready }
  }

  /**
   * Runs `code` in a waiting interpreter (or one started now when none waits), which is ended
   * afterwards. The program has `timeoutMs` from when its interpreter is ready (starting one is
   * the server's cost, not the program's); past it, or when `turn` aborts, it is ended at once: a
   * loop that never ends and a program that waits forever stop alike.
   */
  async run(code: string, turn: AbortSignal, timeoutMs: number): Promise<PythonOutcome> {
    if (this.closed) throw new Error('the server is stopping')
    const interpreter = this.waiting.shift() ?? this.start()
    // One starts in its place at once.
    this.warm()
    const { thread } = interpreter
    this.running.add(thread)
    thread.ref()
    try {
      await abortable(interpreter.ready, AbortSignal.any([turn, AbortSignal.timeout(START_TIMEOUT_MS)]))
      return await abortable(new Promise<PythonOutcome>((resolve, reject) => {
        thread.once('message', resolve)
        thread.once('error', (error: Error & { code?: string }) => reject(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new Error('the program needed more memory than its interpreter has') : error))
        thread.once('exit', () => reject(new Error('the interpreter stopped')))
        thread.postMessage({ code })
      }), AbortSignal.any([turn, AbortSignal.timeout(timeoutMs)]))
    } finally {
      this.running.delete(thread)
      void thread.terminate()
    }
  }

  /** Ends every interpreter, waiting or running. */
  async close(): Promise<void> {
    this.closed = true
    const threads = [...this.waiting.map((interpreter) => interpreter.thread), ...this.running]
    this.waiting.length = 0
    await Promise.all(threads.map((thread) => thread.terminate()))
  }
}
