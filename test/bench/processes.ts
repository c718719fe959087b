/**
 * The processes a standalone bench starts: the built server (as the container runs it) and the
 * fake Ollama, each in a process of its own so that the figures are the server's alone.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

const ROOT = new URL('../../', import.meta.url).pathname

/** Starts `node args` and resolves once it prints a line `ready(line)` accepts. */
export function startedProcess(args: string[], env: Record<string, string>, ready: (line: string) => string | undefined): Promise<{ child: ChildProcess; value: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const value = ready(line)
      if (value !== undefined) resolve({ child, value })
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

/** dist/server.mjs on a free loopback port, rate limits off; resolves with its URL once it listens. */
export async function startServer(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const { child, value } = await startedProcess(['dist/server.mjs'], { PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', RATE_LIMIT: '0', ...env }, (line) =>
    line.includes('"listening"') ? JSON.parse(line).url : undefined)
  return { url: value, child }
}

/** The fake Ollama (test/support/fake-ollama.ts) with its command-line options; resolves with its URL. */
export async function startFake(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const { child, value } = await startedProcess(['--import', 'tsx', 'test/support/fake-ollama.ts', ...args], {}, (line) =>
    line.startsWith('{"url"') ? JSON.parse(line).url : undefined)
  return { url: value, child }
}

/** Stops a child and resolves once it has exited. */
export async function stopped(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}
