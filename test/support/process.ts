import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { TestContext } from 'node:test'

export const PROJECT_ROOT = new URL('../../', import.meta.url).pathname
/** `node` arguments that run the server from source, from any working folder. */
export const SERVER_FROM_SOURCE = ['--import', import.meta.resolve('tsx'), `${PROJECT_ROOT}lib/server.ts`]

export interface ServerProcess {
  child: ChildProcess
  url: string
  /** Every log line the server printed so far. */
  lines: string[]
  /** Resolves with the first log entry (parsed) whose `msg` is `message`, printed already or later; rejects after `ms`. */
  logged(message: string, ms?: number): Promise<any>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts the API in its own process (`args` after `node`) and resolves with its address once it
 * logs that it is listening. It is killed when the test ends, if it still runs.
 */
export function spawnServer(t: TestContext, args: string[], { cwd = PROJECT_ROOT, env = {} }: { cwd?: string; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const lines: string[] = []
  const watchers = new Set<(entry: any) => void>()
  const logged = (message: string, ms = 20_000) =>
    new Promise<any>((resolve, reject) => {
      const earlier = lines.map(safeJson).find((entry) => entry?.msg === message)
      if (earlier) return resolve(earlier)
      const timer = setTimeout(() => {
        watchers.delete(watch)
        reject(new Error(`the server did not log ${JSON.stringify(message)} within ${ms} ms`))
      }, ms)
      const watch = (entry: any) => {
        if (entry?.msg !== message) return
        clearTimeout(timer)
        watchers.delete(watch)
        resolve(entry)
      }
      watchers.add(watch)
    })
  let stderr = ''
  child.stderr!.on('data', (data) => (stderr += data))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time: ${stderr}`)), 20_000)
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      const entry = safeJson(line)
      for (const watch of watchers) watch(entry)
      if (entry?.msg === 'listening') {
        clearTimeout(timer)
        resolve({ child, url: entry.url, lines, logged, exited })
      }
    })
    void exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code} before listening: ${stderr}`))
    })
  })
}

function safeJson(line: string): any {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}
