import { Worker } from 'node:worker_threads'
import { HttpProblem } from '../shared/problem.ts'
import { MAX_JSON_DEPTH } from './body.ts'

/**
 * An import file (up to IMPORT_MAX_BYTES, 64 MiB by default), parsed in a worker thread so that
 * no request holds the event loop while it is read: the worker decodes and parses it once, then
 * hands over one conversation at a time, as the importer asks for it. Each is checked there first
 * (nesting, U+0000), so only what can be stored crosses over. The worker's code is inline: it
 * needs only Node, in any bundle.
 */
// process.getBuiltinModule: the same in a CommonJS or an ES module scope, whichever Node picks for it.
const WORKER_SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads')
let items = []
const unfit = (value) => {
  const stack = [[value, 0]]
  while (stack.length) {
    const [at, depth] = stack.pop()
    if (typeof at === 'string') {
      if (at.includes('\\0')) return 'holds the character U+0000, which cannot be stored'
    } else if (at !== null && typeof at === 'object') {
      if (depth >= workerData.maxDepth) return 'is nested deeper than ' + workerData.maxDepth + ' levels'
      for (const key of Array.isArray(at) ? [] : Object.keys(at)) if (key.includes('\\0')) return 'holds the character U+0000, which cannot be stored'
      for (const inner of Object.values(at)) stack.push([inner, depth + 1])
    }
  }
  return null
}
try {
  const parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(workerData.bytes))
  const shape = Array.isArray(parsed) ? 'array' : parsed !== null && typeof parsed === 'object' ? 'object' : 'other'
  items = shape === 'array' ? parsed : [parsed]
  parentPort.postMessage({ shape, count: items.length })
} catch (error) {
  parentPort.postMessage({ error: error instanceof TypeError ? 'The body is not valid UTF-8.' : 'The body is not valid JSON: ' + error.message })
}
parentPort.on('message', (index) => {
  const item = items[index]
  items[index] = undefined
  const why = unfit(item)
  parentPort.postMessage(why ? { unfit: why } : { item })
})
`

export interface ImportFile {
  /** A JSON array (a list of conversations), one object (one conversation), or anything else. */
  shape: 'array' | 'object' | 'other'
  count: number
  /** The `index`th conversation of the file, or why it cannot be read; each is handed over once. */
  item(index: number): Promise<{ item: unknown } | { unfit: string }>
  close(): Promise<void>
}

/** Opens `bytes` (moved to the worker: not usable here afterwards); 400 for what is not JSON. */
export async function openImportFile(bytes: Uint8Array): Promise<ImportFile> {
  // A small body shares Node's buffer pool, which must not move: it is copied (cheaply) instead.
  const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bytes: own, maxDepth: MAX_JSON_DEPTH }, transferList: [own.buffer as ArrayBuffer] })
  const replies: Array<(message: any) => void> = []
  let failure: Error | undefined
  worker.on('message', (message) => replies.shift()?.(message))
  worker.on('error', (error) => {
    failure = error
    for (const reply of replies.splice(0)) reply({ failed: error })
  })
  const next = () => new Promise<any>((resolve, reject) => {
    if (failure) reject(failure)
    else replies.push((message) => (message.failed ? reject(message.failed) : resolve(message)))
  })
  const opened = await next()
  if (opened.error) {
    await worker.terminate()
    throw new HttpProblem(400, 'validation', opened.error)
  }
  return {
    shape: opened.shape,
    count: opened.count,
    item(index) {
      const reply = next()
      worker.postMessage(index)
      return reply
    },
    async close() {
      await worker.terminate()
    },
  }
}
