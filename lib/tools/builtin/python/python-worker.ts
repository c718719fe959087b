/**
 * One Python interpreter (Pyodide) in a worker thread, for one `run_python` call
 * (docs/builtin-tools.md "Python"). It starts, shuts itself in, says it is ready, runs the one
 * program it is sent and answers. Shutting in, before any code is run:
 * - its WebAssembly memory cannot grow past the limit (Python gets MemoryError);
 * - `import js` sees an empty object (not this thread's globals);
 * - no JavaScript can be made from a string (eval, Function and every function's constructor
 *   are gone), so Python can only call functions it is handed;
 * - every function of Node's file, network, process and thread modules throws, sockets cannot
 *   connect or listen, fetch and WebSocket are gone: what Pyodide itself reaches for through them
 *   (its host file system mounts, its sockets, pyfetch) fails;
 * - Pyodide's API to mount host folders is removed.
 * Pyodide keeps its own in-memory file system; the server's files and network stay out of reach.
 */
import { fileURLToPath } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'

interface PyodideLike {
  runPythonAsync(code: string, options?: { globals?: unknown }): Promise<unknown>
  pyimport(name: string): any
  globals: { get(name: string): any }
  FS: { filesystems: Record<string, unknown> }
  [key: string]: unknown
}

const { pyodideUrl, memoryBytes, maxOutputBytes } = workerData as { pyodideUrl: string; memoryBytes: number; maxOutputBytes: number }
const port = parentPort!

/** Every write past the limit is counted, not kept. */
class Output {
  text = ''
  cut = false
  add(line: string) {
    if (this.text.length + line.length + 1 > maxOutputBytes) this.cut = true
    else this.text += `${line}\n`
  }
}
let stdout = new Output()
let stderr = new Output()

/** WebAssembly's Memory, as far as it is used here (the project's types have no DOM or WebAssembly library). */
interface WasmMemory {
  buffer: ArrayBuffer
  grow(pages: number): number
}

function limitMemory(): void {
  const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } }).WebAssembly
  const grow = Memory.prototype.grow
  Memory.prototype.grow = function (this: WasmMemory, pages: number) {
    if (this.buffer.byteLength + pages * 65_536 > memoryBytes) throw new RangeError('PYTHON_MEMORY reached')
    return grow.call(this, pages)
  }
}

function shutIn(pyodide: PyodideLike): void {
  const refused = () => {
    throw new Error('not available to Python here: it has no network and no host files')
  }
  // Loaded first: a module loaded after its neighbours were cut would fail to load, not to act.
  const modules = ['fs', 'fs/promises', 'net', 'tls', 'dgram', 'http', 'https', 'http2', 'child_process', 'dns', 'dns/promises', 'worker_threads', 'module', 'vm', 'inspector', 'cluster']
    .map((id) => process.getBuiltinModule(id) as Record<string, unknown>)
  const net = process.getBuiltinModule('net')
  const dgram = process.getBuiltinModule('dgram')
  for (const module of modules) {
    // Classes stay (the modules' own code extends them); their instances' doors are shut below.
    for (const key of Object.keys(module)) if (typeof module[key] === 'function' && !/^[A-Z]/.test(key)) try { module[key] = refused } catch { /* read-only */ }
  }
  net.Socket.prototype.connect = refused as never
  net.Server.prototype.listen = refused as never
  dgram.Socket.prototype.bind = refused as never
  dgram.Socket.prototype.send = refused as never
  for (const fn of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(fn), 'constructor', { value: undefined, writable: false, configurable: false })
  }
  // Pyodide checks `x instanceof Function`: a Function that cannot make one keeps that working.
  const NoFunction = function Function() {
    throw new EvalError('no code can be made from a string here')
  }
  NoFunction.prototype = Object.getPrototypeOf(function () {})
  Object.defineProperty(globalThis, 'Function', { value: NoFunction, writable: false, configurable: false })
  for (const name of ['eval', 'process', 'fetch', 'WebSocket', 'EventSource', 'XMLHttpRequest', 'Request', 'Response', 'Headers', 'require', 'module', 'BroadcastChannel', 'Worker', 'importScripts', 'navigator']) {
    try {
      delete (globalThis as Record<string, unknown>)[name]
    } catch { /* not configurable */ }
  }
  delete pyodide.mountNodeFS
  delete pyodide.mountNativeFS
  delete pyodide.FS.filesystems.NODEFS
}

void (async () => {
  try {
    limitMemory()
    const { loadPyodide } = await import(pyodideUrl) as { loadPyodide(options: Record<string, unknown>): Promise<PyodideLike> }
    const pyodide = await loadPyodide({
      // Said, not guessed: run from a bundle's text, the thread has no file of its own to look beside.
      indexURL: fileURLToPath(new URL('./', pyodideUrl)),
      jsglobals: Object.create(null),
      env: { HOME: '/home/pyodide' },
      stdin: () => null,
      stdout: (line: string) => stdout.add(line),
      stderr: (line: string) => stderr.add(line),
    })
    // Anything Pyodide itself writes while starting is not the program's.
    stdout = new Output()
    stderr = new Output()
    const repr = pyodide.pyimport('builtins').repr
    shutIn(pyodide)
    port.once('message', async ({ code }: { code: string }) => {
      let value: string | null = null
      let error: string | null = null
      try {
        const result = await pyodide.runPythonAsync(code, { globals: pyodide.globals.get('dict')() })
        if (result !== undefined && result !== null) value = String(repr(result))
        ;(result as { destroy?: () => void } | undefined)?.destroy?.()
      } catch (failure) {
        // Python's traceback, without the lines of Pyodide's own frames.
        error = String((failure as Error).message ?? failure).split('\n').filter((line) => !/File "\/lib\/python[\d.]+\/_pyodide\//.test(line) && !/^\s+(await|return|coroutine|res =|result =)/.test(line)).join('\n').trim()
      }
      port.postMessage({ stdout: stdout.text, stderr: stderr.text, cut: stdout.cut || stderr.cut, value, error })
    })
    port.postMessage({ ready: true })
  } catch (error) {
    port.postMessage({ failed: (error as Error)?.message ?? String(error) })
  }
})()
