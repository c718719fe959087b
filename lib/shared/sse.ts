import { HttpProblem } from './problem.ts'

const encoder = new TextEncoder()
const PING = encoder.encode(': ping\n\n')

const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const

/** Receives each encoded SSE frame in order, then `null` when the stream has ended. */
export type FrameListener = (frame: Uint8Array | null) => void

/** Something a client can follow: frames after an event id it last saw, then live ones. */
export interface EventSource {
  /** Replays what came after `lastEventId` (everything for null or an unknown id), then follows; returns the detach. */
  subscribe(lastEventId: string | null, listener: FrameListener): () => void
}

/**
 * One SSE event: an `id:` line and one `data:` line. `json` comes from JSON.stringify, which
 * escapes line breaks, so no text can break the framing.
 */
export function encodeEvent(id: string, json: string): Uint8Array {
  return encoder.encode(eventText(id, json))
}

/** The text encodeEvent encodes. */
export const eventText = (id: string, json: string): string => `id: ${id}\ndata: ${json}\n\n`

/** The event id a reconnecting client last saw (`Last-Event-ID`), null when absent or unreadable. */
export function lastEventId(request: Request): string | null {
  const value = request.headers.get('last-event-id')?.trim()
  return value && /^[\w.:-]{1,100}$/.test(value) ? value : null
}

/** Clients that may follow one reply or response at once on one instance (the one that started it included). */
export const MAX_FOLLOWERS = 16

export const tooManyFollowers = (maxFollowers: number) =>
  new HttpProblem(429, 'rate_limit', `This reply already has ${maxFollowers} clients following it; try again when one has left.`, {
    headers: { 'retry-after': '5' },
  })

/**
 * Bytes that may wait for one client before it is dropped: a client that reads this far behind
 * is not reading, and what waits for it would grow with the reply.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024

/**
 * A streaming response following `source` from after `afterId`: the events it already has, then
 * live ones until it ends, with `: ping` while nothing else flows for `heartbeatMs`. The client
 * going away detaches it; the source goes on. A client with more than MAX_QUEUED_BYTES of live
 * events waiting is dropped: its stream ends in an error. Throws (before any response) when the
 * source refuses another follower.
 */
export function followEvents(source: EventSource, afterId: string | null, heartbeatMs: number, headers: Record<string, string> = {}): Response {
  let detach = () => {}
  let heartbeat: NodeJS.Timeout | undefined
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let lastWriteAt = Date.now()
  let ended = false
  const stop = () => {
    ended = true
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
  const pending: Array<Uint8Array | null> = []
  let started = false
  const deliver = (frame: Uint8Array | null) => {
    if (ended) return
    if (!frame) {
      stop()
      controller.close()
    } else if ((controller.desiredSize ?? 0) < frame.byteLength) {
      stop()
      controller.error(new Error(`the client fell more than ${MAX_QUEUED_BYTES} bytes behind and was dropped`))
    } else {
      lastWriteAt = Date.now()
      controller.enqueue(frame)
    }
  }
  // Subscribed before the Response exists, so a refusal is a problem response, not a broken stream.
  detach = source.subscribe(afterId, (frame) => (started ? deliver(frame) : pending.push(frame)))
  const body = new ReadableStream<Uint8Array>(
    {
      start(streamController) {
        controller = streamController
        started = true
        // The replay is what the source holds already: it is not held against the client.
        for (const frame of pending) {
          if (frame) controller.enqueue(frame)
          else deliver(null)
        }
        if (!ended) heartbeat = setTimeout(beat, heartbeatMs)
      },
      cancel: stop,
    },
    new ByteLengthQueuingStrategy({ highWaterMark: MAX_QUEUED_BYTES }),
  )
  return new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...headers } })
}
