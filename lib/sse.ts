import type { Generation } from './generations.ts'

const encoder = new TextEncoder()
const PING = encoder.encode(': ping\n\n')

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const

/**
 * One SSE event: an `id:` line and one `data:` line. `json` comes from JSON.stringify, which
 * escapes line breaks, so no text can break the framing.
 */
export function encodeEvent(id: number, json: string): Uint8Array {
  return encoder.encode(`id: ${id}\ndata: ${json}\n\n`)
}

/** The event id a reconnecting client last saw (`Last-Event-ID`), 0 when absent or unreadable. */
export function lastEventId(request: Request): number {
  const value = request.headers.get('last-event-id')?.trim()
  return value && /^\d{1,9}$/.test(value) ? Number(value) : 0
}

/**
 * A streaming response following `generation` from after event `afterId`: the events it already
 * has, then live ones until it ends, with `: ping` while nothing else flows for `heartbeatMs`.
 * The client going away detaches it; the generation goes on.
 */
export function followGeneration(generation: Generation, afterId: number, heartbeatMs: number, headers: Record<string, string> = {}): Response {
  let detach = () => {}
  let heartbeat: NodeJS.Timeout | undefined
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let lastWriteAt = Date.now()
      const stop = () => {
        clearTimeout(heartbeat)
        detach()
      }
      // Re-armed from the last write instead of reset on every token, which would cost a timer per token.
      const beat = () => {
        const idleMs = Date.now() - lastWriteAt
        if (idleMs < heartbeatMs) {
          heartbeat = setTimeout(beat, heartbeatMs - idleMs)
          return
        }
        controller.enqueue(PING)
        lastWriteAt = Date.now()
        heartbeat = setTimeout(beat, heartbeatMs)
      }
      heartbeat = setTimeout(beat, heartbeatMs)
      detach = generation.subscribe(afterId, (frame) => {
        if (frame) {
          lastWriteAt = Date.now()
          controller.enqueue(frame)
        } else {
          stop()
          controller.close()
        }
      })
    },
    cancel() {
      clearTimeout(heartbeat)
      detach()
    },
  })
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...headers } })
}
