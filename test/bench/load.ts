/**
 * The load the benches put on a server: streamed chats timed to their first token, waves of them,
 * and what a process costs (CPU, peak RSS) read from /proc.
 */
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'

/** One keep-alive agent for every request a bench makes. */
export const agent = new Agent({ keepAlive: true, maxSockets: Infinity })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** User and system CPU time of a process so far, in ms (Linux /proc; 10 ms ticks). */
export function cpuMs(child: ChildProcess): number {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

export function peakRssMb(child: ChildProcess): number {
  const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024
}

export interface StreamResult {
  ttftMs: number
  ok: boolean
  status: number
}

/**
 * One streamed chat: POST `body` to `url`, time to the first token, and whether the stream ended
 * properly (`endMarker` seen).
 */
export function stream(url: string, body: string, firstToken: string, endMarker: string, headers: Record<string, string> = {}): Promise<StreamResult> {
  return new Promise((resolve) => {
    const startedAt = performance.now()
    let ttftMs = Number.NaN
    let tail = ''
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        if (Number.isNaN(ttftMs) && chunk.includes(firstToken)) ttftMs = performance.now() - startedAt
        tail = (tail + chunk).slice(-400)
      })
      res.on('end', () => resolve({ ttftMs, ok: res.statusCode === 200 && tail.includes(endMarker), status: res.statusCode ?? 0 }))
      res.on('error', () => resolve({ ttftMs, ok: false, status: res.statusCode ?? 0 }))
    })
    req.on('error', () => resolve({ ttftMs, ok: false, status: 0 }))
    req.end(body)
  })
}

/** A chat straight to a (fake) Ollama, streamed. */
export const directChat = (fake: string) => () =>
  stream(`${fake}/api/chat`, JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'bench' }], stream: true }), '"content":"tok', '"done":true')

/** A chat through the service, streamed. */
export const serviceChat = (service: { url: string; headers?: Record<string, string> }) => () =>
  stream(`${service.url}/v1/chat`, JSON.stringify({ message: 'bench' }), '"type":"token"', '"type":"done"', service.headers)

/** `count` streams, started `spacingMs` apart (0: all at once), all awaited. */
export async function wave(run: () => Promise<StreamResult>, count: number, spacingMs: number): Promise<StreamResult[]> {
  const inFlight: Array<Promise<StreamResult>> = []
  for (let index = 0; index < count; index++) {
    inFlight.push(run())
    if (spacingMs > 0) await sleep(spacingMs)
  }
  return Promise.all(inFlight)
}

/** The service's URL from its `listening` log line (a JSON line); undefined for any other line. */
export const listeningUrl = (line: string): string | undefined => {
  try {
    const entry = JSON.parse(line)
    return entry.msg === 'listening' ? String(entry.url) : undefined
  } catch {
    return undefined
  }
}
