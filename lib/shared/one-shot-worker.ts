import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * Runs a worker thread for one answer (its first message): with a memory limit, ended past
 * `timeoutMs` or when `signal` aborts, and ended once it answers. A thread that runs out of memory,
 * fails or exits without answering rejects with `failed`'s error.
 */
export function oneShotWorker<T>(
  /** The worker's own file (tests, `tsx`) or its bundled source (build.mjs embeds it as text). */
  entry: { file: URL; bundled: string | undefined },
  workerData: unknown,
  limits: { timeoutMs: number; memoryMb: number; signal?: AbortSignal | undefined },
  failed: (why: 'timeout' | 'memory' | 'exit' | 'aborted', error?: Error) => Error,
): Promise<T> {
  limits.signal?.throwIfAborted()
  // An empty environment: nothing of the server's (its secrets) is in the thread's process.env.
  const options: WorkerOptions = { workerData, env: {}, resourceLimits: { maxOldGenerationSizeMb: limits.memoryMb, maxYoungGenerationSizeMb: 32 } }
  const thread = entry.bundled === undefined ? new Worker(entry.file, options) : new Worker(entry.bundled, { ...options, eval: true })
  return new Promise<T>((resolve, reject) => {
    const end = (error?: Error) => {
      clearTimeout(timer)
      limits.signal?.removeEventListener('abort', aborted)
      if (error) reject(error)
      void thread.terminate()
    }
    const timer = setTimeout(() => end(failed('timeout')), limits.timeoutMs)
    const aborted = () => end(limits.signal!.reason instanceof Error ? limits.signal!.reason : failed('aborted'))
    limits.signal?.addEventListener('abort', aborted, { once: true })
    thread.once('message', (answer: T) => {
      end()
      resolve(answer)
    })
    thread.once('error', (error: Error & { code?: string }) => end(failed(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'exit', error)))
    thread.once('exit', () => end(failed('exit')))
  })
}
