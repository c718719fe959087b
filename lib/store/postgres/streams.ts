import type { Sql } from 'postgres'
import type { Logger } from '../../observability/log.ts'
import { type FrameListener } from '../../shared/sse.ts'
import { NOTHING_SENT, type SentText, type StreamEnded, type StreamPublisher } from '../cluster.ts'

/*
 * A reply's frames between instances (lib/store/postgres/cluster.ts hands these out): its owner
 * writes them in batches to `stream_events`, and followers on other instances read them in order.
 */

/** How long an owner gathers frames before writing them: one INSERT and one NOTIFY per batch, never per token. */
export const EVENT_BATCH_MS = 50
/** A follower reads again this often even without a wake-up (one lost while the listening connection reconnected). */
const FOLLOWER_POLL_MS = 2000

const encoder = new TextEncoder()

export interface Batch {
  firstSeq: number
  frames: string[]
  final: boolean
}

/** Gathers a stream's frames for EVENT_BATCH_MS, then hands them on as one batch; the last batch at once. */
export class BatchPublisher implements StreamPublisher {
  private readonly streamId: string
  private readonly write: (batch: Batch) => Promise<void>
  private frames: string[] = []
  private firstSeq = 0
  private timer: NodeJS.Timeout | undefined
  /** Batches go out one after the other, in order. */
  private writing: Promise<void> = Promise.resolve()
  private ended = false

  constructor(streamId: string, write: (batch: Batch) => Promise<void>) {
    this.streamId = streamId
    this.write = write
  }

  push(seq: number, frame: string): void {
    if (this.ended) return
    if (this.frames.length === 0) this.firstSeq = seq
    this.frames.push(frame)
    this.timer ??= setTimeout(() => this.flush(false), EVENT_BATCH_MS)
  }

  end(): void {
    if (this.ended) return
    this.flush(true)
    this.ended = true
  }

  private flush(final: boolean): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = { firstSeq: this.firstSeq, frames: this.frames, final }
    this.frames = []
    if (batch.frames.length === 0 && !final) return
    this.writing = this.writing.then(() => this.write(batch))
  }
}

/**
 * One client following, on this instance, a stream another instance runs: each wake-up reads the
 * frames after the last one it sent, strictly in order (a batch beyond a missing one waits for
 * it: its owner writes it again). When the frames stop short of the last one and the stream is
 * over in the store, its end comes from the store: never an end that did not happen.
 */
export class RemoteFollower {
  private readonly sql: Sql
  private readonly streamId: string
  /** The frame it starts after: what the client had before. */
  private readonly startAfter: number
  private next: number
  private readonly ended: StreamEnded
  private readonly listener: FrameListener
  private readonly log: Logger | undefined
  private readonly onStop: () => void
  private readonly closing: string | undefined
  private readonly poll: NodeJS.Timeout
  private reading = false
  private readAgain = false
  private stopped = false
  /** The reply text and reasoning of the text events sent since the last tool result (a reply's own). */
  private sentText: SentText = NOTHING_SENT
  /** Whether a tool result was sent: the text before this follower started is then none of the reply's. */
  private sentToolResult = false

  constructor(sql: Sql, streamId: string, next: number, ended: StreamEnded, listener: FrameListener, log: Logger | undefined, closing: string | undefined, onStop: () => void) {
    this.sql = sql
    this.closing = closing
    this.streamId = streamId
    this.startAfter = next - 1
    this.next = next
    this.ended = ended
    this.listener = listener
    this.log = log
    this.onStop = onStop
    this.poll = setInterval(() => this.wake(), FOLLOWER_POLL_MS)
  }

  wake(): void {
    if (this.stopped) return
    if (this.reading) {
      this.readAgain = true
      return
    }
    this.reading = true
    void this.read().finally(() => {
      this.reading = false
      if (this.readAgain) {
        this.readAgain = false
        this.wake()
      }
    })
  }

  stop(): void {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.poll)
    this.onStop()
  }

  /** This instance stops: the client is told to reconnect (elsewhere), and the stream ends. */
  close(): void {
    this.finish(this.closing === undefined ? [] : [this.closing])
  }

  private finish(lastFrames: string[]): void {
    if (this.stopped) return
    for (const frame of lastFrames) this.listener(encoder.encode(frame))
    this.listener(null)
    this.stop()
  }

  private send(frame: string): void {
    if (frame.includes(TOOL_RESULT)) this.sentToolResult = true
    this.sentText = textAfter(this.sentText, frame)
    this.listener(encoder.encode(frame))
  }

  private async read(): Promise<void> {
    try {
      const rows = await this.sql`
        SELECT first_seq, frames, final FROM stream_events
        WHERE stream_id = ${this.streamId} AND first_seq + cardinality(frames) > ${this.next} ORDER BY first_seq`
      let final = false
      let gap = false
      const before = this.next
      for (const row of rows) {
        // A gap: the batch before this one is not written yet (its owner writes it again).
        if (row.first_seq > this.next) {
          gap = true
          break
        }
        const frames = row.frames as string[]
        for (let index = this.next - row.first_seq; index < frames.length && !this.stopped; index++) this.send(frames[index]!)
        this.next = row.first_seq + frames.length
        final ||= row.final as boolean
      }
      if (final) return this.finish([])
      // Frames came and none is missing: more will, or the last batch.
      if (this.next > before && !gap) return
      const last = await this.ended(this.next, () => this.knownText())
      if (last !== false) this.finish(last)
    } catch (error) {
      // The next wake-up or poll reads again.
      this.log?.warn('reading another instance\'s events failed', { stream_id: this.streamId, error })
    }
  }

  /** The reply text the client has: what came before this follower started (read back), then what it sent. */
  private async knownText(): Promise<SentText | null> {
    if (this.startAfter === 0 || this.sentToolResult) return this.sentText
    const rows = await this.sql`
      SELECT first_seq, frames FROM stream_events WHERE stream_id = ${this.streamId} AND first_seq <= ${this.startAfter} ORDER BY first_seq`
    let text = NOTHING_SENT
    let seq = 1
    for (const row of rows) {
      if (row.first_seq > seq) return null
      const frames = row.frames as string[]
      for (let index = seq - row.first_seq; index < frames.length && seq <= this.startAfter; index++, seq++) text = textAfter(text, frames[index]!)
    }
    if (seq <= this.startAfter) return null
    return { text: text.text + this.sentText.text, thinking: text.thinking + this.sentText.thinking }
  }
}

/**
 * A reply's own text and reasoning once `frame` was sent after `sent`: a token or thinking event
 * adds its content; a tool result starts them anew (what came before went with the tool step).
 */
function textAfter(sent: SentText, frame: string): SentText {
  if (frame.includes(TOKEN)) return { ...sent, text: sent.text + contentOf(frame, TOKEN) }
  if (frame.includes(THINKING)) return { ...sent, thinking: sent.thinking + contentOf(frame, THINKING) }
  return frame.includes(TOOL_RESULT) ? NOTHING_SENT : sent
}

const contentOf = (frame: string, start: string) => (JSON.parse(frame.slice(frame.indexOf(start) + 7)) as { content: string }).content

/** How token, thinking and tool result events begin in a frame (lib/generation/generation.ts writes them so). */
const TOKEN = '\ndata: {"type":"token"'
const THINKING = '\ndata: {"type":"thinking"'
const TOOL_RESULT = '\ndata: {"type":"tool_result"'
