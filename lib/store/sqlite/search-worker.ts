import { Worker } from 'node:worker_threads'

/**
 * Runs one read-only statement on a connection of its own in a worker thread, so that a slow
 * query (a search for words in most of a million messages) never holds the server's event loop.
 * The worker's code is inline: it needs only Node, in any bundle. WAL lets it read while the
 * server writes.
 */
// process.getBuiltinModule: the same in a CommonJS or an ES module scope, whichever Node picks for it.
const WORKER_SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads')
const { DatabaseSync } = process.getBuiltinModule('node:sqlite')
const db = new DatabaseSync(workerData.path, { readOnly: true, timeout: 5000 })
// Pages mapped rather than read one by one: a row after a huge text is reached through its
// overflow chain, thousands of pages that the small page cache would read again every time.
db.exec('PRAGMA mmap_size = 268435456')
const statement = db.prepare(workerData.sql)
parentPort.on('message', ({ id, args }) => {
  try {
    parentPort.postMessage({ id, rows: statement.all(...args) })
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) })
  }
})
`

type Row = Record<string, unknown>

export class ReadWorker {
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (rows: Row[]) => void; reject: (error: Error) => void }>()
  private nextId = 0

  constructor(path: string, sql: string) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, sql } })
    // Idle, it keeps nothing alive; a query in flight does.
    this.worker.unref()
    this.worker.on('message', ({ id, rows, error }: { id: number; rows?: Row[]; error?: string }) => {
      const waiting = this.pending.get(id)
      this.pending.delete(id)
      if (this.pending.size === 0) this.worker.unref()
      if (error !== undefined) waiting?.reject(new Error(error))
      else waiting?.resolve(rows!)
    })
    this.worker.on('error', (error) => {
      for (const waiting of this.pending.values()) waiting.reject(error)
      this.pending.clear()
    })
  }

  all(...args: Array<string | number>): Promise<Row[]> {
    const id = this.nextId++
    this.worker.ref()
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.worker.postMessage({ id, args })
    })
  }

  async close(): Promise<void> {
    await this.worker.terminate()
  }
}
