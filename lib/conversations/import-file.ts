import { Worker } from 'node:worker_threads'
import { HttpProblem } from '../shared/problem.ts'
import type { ImportedConversation, ImportedMessage } from '../store/chat-store.ts'
import { MAX_JSON_DEPTH } from '../http/body.ts'
import type { ImportRequest } from './import-worker.ts'
import type { ImportLimits } from './import.ts'

/**
 * Imports running at once on this instance: each holds its file and a worker thread (a parsed
 * 64 MiB file is hundreds of megabytes), so one user may run one, and the instance two.
 */
export const MAX_IMPORTS = 2
const imports = new WeakMap<object, { total: number; users: Set<string> }>()

/** A slot to run an import in (give it back with the function returned); 429 when none is free. */
export function takeImportSlot(app: object, userId: string): () => void {
  let running = imports.get(app)
  if (!running) imports.set(app, (running = { total: 0, users: new Set() }))
  if (running.users.has(userId)) throw new HttpProblem(429, 'rate_limit', 'One of your imports is still running; send the next file when it has finished.', { headers: { 'retry-after': '5' } })
  if (running.total >= MAX_IMPORTS) throw new HttpProblem(429, 'rate_limit', `${MAX_IMPORTS} imports are running on this server; try again in a moment.`, { headers: { 'retry-after': '5' } })
  running.total++
  running.users.add(userId)
  const slots = running
  let given = false
  return () => {
    if (given) return
    given = true
    slots.total--
    slots.users.delete(userId)
  }
}

/** lib/conversations/import-worker.ts bundled (build.mjs); undefined when running from source. */
declare const __IMPORT_WORKER__: string | undefined

/** A conversation of the file, read in the worker: its messages are fetched in chunks. */
export type ImportItem =
  | { known: boolean; unfit: string }
  | { known: boolean; conversation: ImportedConversation; messageCount: number }

export interface ImportFile {
  /** A JSON array (a list of conversations), one object (one conversation), or anything else. */
  shape: 'array' | 'object' | 'other'
  count: number
  /** The `index`th conversation (each is read once), with no messages yet; or why it cannot be imported. */
  item(index: number): Promise<ImportItem>
  /**
   * The next chunk of the conversation last read, from its `from`th message: at most 50 messages
   * or 32,000 characters (one message at least), parents before children.
   */
  messages(from: number): Promise<ImportedMessage[]>
  close(): Promise<void>
}

/**
 * An import file (up to IMPORT_MAX_BYTES, 64 MiB by default), decoded, parsed and read in a
 * worker thread (lib/conversations/import-worker.ts), so that no request holds the event loop while it is
 * read: the server's thread gets one conversation at a time, and its messages a chunk at a time.
 * `bytes` moves to the worker (not usable here afterwards); 400 for what is not JSON.
 */
export async function openImportFile(bytes: Uint8Array, limits: ImportLimits): Promise<ImportFile> {
  // A small body shares Node's buffer pool, which must not move: it is copied (cheaply) instead.
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
  const options = { workerData: { bytes: own, maxDepth: MAX_JSON_DEPTH, limits }, transferList: [own.buffer as ArrayBuffer] }
  const worker = typeof __IMPORT_WORKER__ === 'undefined'
    ? new Worker(new URL('./import-worker.ts', import.meta.url), options)
    : new Worker(__IMPORT_WORKER__, { ...options, eval: true })
  const replies: Array<{ resolve: (message: any) => void; reject: (error: Error) => void }> = []
  let failure: Error | undefined
  worker.on('message', (message) => replies.shift()?.resolve(message))
  worker.on('error', (error) => {
    failure = error
    for (const reply of replies.splice(0)) reply.reject(error)
  })
  const reply = <T>(): Promise<T> => new Promise((resolve, reject) => (failure ? reject(failure) : replies.push({ resolve, reject })))
  const ask = <T>(request: ImportRequest): Promise<T> => {
    const answer = reply<T>()
    worker.postMessage(request)
    return answer
  }
  const opened = await reply<{ shape: ImportFile['shape']; count: number; error?: string }>()
  if (opened.error) {
    await worker.terminate()
    throw new HttpProblem(400, 'validation', opened.error)
  }
  return {
    shape: opened.shape,
    count: opened.count,
    item: (index) => ask({ index }),
    messages: (from) => ask({ from }),
    async close() {
      await worker.terminate()
    },
  }
}
