import { Worker } from 'node:worker_threads'

/**
 * Runs a read-only procedure over a few statements on a connection of its own in a worker thread,
 * so that a slow query (a search for words in most of a million messages) never holds the
 * server's event loop, and the work on its rows (a search's ranking) is done there too: only what
 * it returns crosses back. The worker's code is inline: it needs only Node, in any bundle. WAL
 * lets it read while the server writes.
 */
// process.getBuiltinModule: the same in a CommonJS or an ES module scope, whichever Node picks for it.
const WORKER_SOURCE = `
const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads')
const { DatabaseSync } = process.getBuiltinModule('node:sqlite')
const db = new DatabaseSync(workerData.path, { readOnly: true, timeout: 5000 })
// Pages mapped rather than read one by one: a row after a huge text is reached through its
// overflow chain, thousands of pages that the small page cache would read again every time.
db.exec('PRAGMA mmap_size = 268435456')
const statements = Object.fromEntries(Object.entries(workerData.statements).map(([name, sql]) => [name, db.prepare(sql)]))
const run = (name, ...args) => statements[name].all(...args)
// A transpiler that keeps function names (tsx, esbuild's keepNames) wraps named inner functions
// in a call to its helper __name, which this thread lacks.
globalThis.__name ??= (target) => target
const procedure = (0, eval)('(' + workerData.procedure + ')')
parentPort.on('message', ({ id, args }) => {
  try {
    parentPort.postMessage({ id, rows: procedure(run, ...args) })
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) })
  }
})
`

type Row = Record<string, unknown>
/** Runs a statement by its name. */
type Run<Name extends string> = (name: Name, ...args: any[]) => Row[]
/**
 * Its source is what runs in the worker: it may use nothing but its arguments (arguments that a
 * structured clone carries) and JavaScript's globals.
 */
type Procedure<Name extends string, Args extends unknown[]> = (run: Run<Name>, ...args: Args) => Row[]

export class ReadWorker<Name extends string, Args extends unknown[]> {
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (rows: Row[]) => void; reject: (error: Error) => void }>()
  private nextId = 0

  constructor(path: string, statements: Record<Name, string>, procedure: Procedure<Name, Args>) {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path, statements, procedure: procedure.toString() } })
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

  /** What the procedure returns for `args`. */
  run(args: Args): Promise<Row[]> {
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
