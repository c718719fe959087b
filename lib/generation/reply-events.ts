import type { StreamPublisher } from '../store/cluster.ts'
import { encodeEvent, eventText, MAX_FOLLOWERS, tooManyFollowers, type EventSource, type FrameListener } from '../shared/sse.ts'

const encoder = new TextEncoder()

export interface ReplyEventLimits {
  /** Events kept as encoded frames for replay; older token events are rebuilt from the text. */
  tailEvents: number
  /** Clients that may follow one reply at once (the one that started it included). */
  maxFollowers: number
}

export const DEFAULT_REPLY_EVENT_LIMITS: ReplyEventLimits = { tailEvents: 64, maxFollowers: MAX_FOLLOWERS }

/** The events that carry text: the answer's `token`s and the reasoning's `thinking`. */
export type TextEvent = 'token' | 'thinking'

/**
 * The SSE events of one reply: their ids, their frames, replay after a `Last-Event-ID`, and the
 * clients following it live.
 *
 * Ids are `<message_id>:<n>`, n counting from 1 (the `start` event): unique within a session, so
 * an id from another reply means "from the start of this one". Memory stays bounded: the `start`
 * frame and the last `tailEvents` frames are kept; a replay that reaches further back gets the
 * older text as one event per run of text events of one type (the reasoning's, then the
 * answer's), each carrying the id of the last event it covers, so the ids and the text a client
 * ends up with are the ones a client that never left saw.
 */
export class ReplyEventLog implements EventSource {
  readonly replyId: string
  private readonly limits: ReplyEventLimits
  private readonly textJson: (type: TextEvent, text: string) => string
  private readonly listeners = new Set<FrameListener>()
  private startFrame: Uint8Array | undefined
  /** Frames of events firstTailId..count. */
  private readonly tail: Uint8Array[] = []
  private firstTailId: number
  private count: number
  /** Events the reply sent before this log began (a turn resumed after approvals): its ids go on from there. */
  private readonly base: number
  /** The reply's text, and its reasoning, as sent so far. */
  private sentText = ''
  private sentThinking = ''
  /** textEnd[id - base], thinkingEnd[id - base]: their lengths once event `id` was sent. */
  private readonly textEnd: number[] = [0]
  private readonly thinkingEnd: number[] = [0]
  private ended = false
  /** Other instances' followers get every frame through it (several instances on PostgreSQL). */
  private readonly publisher: StreamPublisher | null

  constructor(replyId: string, textJson: (type: TextEvent, text: string) => string, limits: ReplyEventLimits = DEFAULT_REPLY_EVENT_LIMITS, publisher: StreamPublisher | null = null, base = 0) {
    this.replyId = replyId
    this.base = base
    this.count = base
    this.firstTailId = base + 2
    this.textJson = textJson
    this.limits = limits
    this.publisher = publisher
  }

  /** The text every `token` event so far carried. */
  get text(): string {
    return this.sentText
  }

  /** The reasoning every `thinking` event so far carried. */
  get thinking(): string {
    return this.sentThinking
  }

  /** How many frames are held in memory (for tests of the bound). */
  get framesHeld(): number {
    return this.tail.length + (this.startFrame ? 1 : 0)
  }

  /** How many events were sent (the last one's id is `<reply id>:<eventCount>`). */
  get eventCount(): number {
    return this.count
  }

  get followers(): number {
    return this.listeners.size
  }

  /** Sends an event that is not a token (`start`, `done`, `error`). */
  event(json: string): void {
    this.push(json)
  }

  /** Sends text of the answer (`token`) or of its reasoning (`thinking`). */
  sendText(type: TextEvent, text: string): void {
    if (type === 'token') this.sentText += text
    else this.sentThinking += text
    this.push(this.textJson(type, text))
  }

  /** The last event has been sent: followers are released, later subscribers get a replay and the end. */
  end(): void {
    this.ended = true
    this.publisher?.end()
    for (const listener of this.listeners) listener(null)
    this.listeners.clear()
  }

  subscribe(lastEventId: string | null, listener: FrameListener): () => void {
    if (!this.ended && this.listeners.size >= this.limits.maxFollowers) throw tooManyFollowers(this.limits.maxFollowers)
    this.replay(this.sequenceOf(lastEventId), listener)
    if (this.ended) {
      listener(null)
      return () => {}
    }
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private push(json: string): void {
    const id = ++this.count
    const text = eventText(`${this.replyId}:${id}`, json)
    this.publisher?.push(id, text)
    const frame = encoder.encode(text)
    this.textEnd.push(this.sentText.length)
    this.thinkingEnd.push(this.sentThinking.length)
    if (id === this.base + 1) {
      this.startFrame = frame
    } else {
      this.tail.push(frame)
      if (this.tail.length > this.limits.tailEvents) {
        this.tail.shift()
        this.firstTailId++
      }
    }
    for (const listener of this.listeners) listener(frame)
  }

  private replay(after: number, listener: FrameListener): void {
    const first = this.base + 1
    if (after < first && this.startFrame) listener(this.startFrame)
    let next = Math.max(after, first) + 1
    if (next < this.firstTailId) {
      for (const run of this.textRuns(next, this.firstTailId - 1)) listener(encodeEvent(`${this.replyId}:${run.lastId}`, this.textJson(run.type, run.text)))
      next = this.firstTailId
    }
    for (let id = next; id <= this.count; id++) listener(this.tail[id - this.firstTailId]!)
  }

  /** The text of events first..last whose frames are gone, one run per stretch of events of one type (others are not kept). */
  private textRuns(first: number, last: number): Array<{ type: TextEvent; text: string; lastId: number }> {
    const runs: Array<{ type: TextEvent; text: string; lastId: number }> = []
    for (let id = first; id <= last; id++) {
      const at = id - this.base
      const type: TextEvent | null = this.textEnd[at]! > this.textEnd[at - 1]! ? 'token' : this.thinkingEnd[at]! > this.thinkingEnd[at - 1]! ? 'thinking' : null
      if (!type) continue
      const source = type === 'token' ? this.sentText : this.sentThinking
      const ends = type === 'token' ? this.textEnd : this.thinkingEnd
      const text = source.slice(ends[at - 1], ends[at])
      const run = runs.at(-1)
      if (run?.type === type) {
        run.text += text
        run.lastId = id
      } else {
        runs.push({ type, text, lastId: id })
      }
    }
    return runs
  }

  /** The n of an id of this reply; 0 (from the start) for anything else. */
  private sequenceOf(lastEventId: string | null): number {
    const prefix = `${this.replyId}:`
    if (!lastEventId?.startsWith(prefix)) return 0
    const n = lastEventId.slice(prefix.length)
    return /^\d{1,9}$/.test(n) ? Math.min(Number(n), this.count) : 0
  }
}
