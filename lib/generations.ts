import type { ChatResponse } from 'ollama'
import type { Logger } from './log.ts'
import { formatMs, type ChatStream } from './ollama.ts'
import { HttpProblem, shuttingDown } from './problem.ts'
import { encodeEvent } from './sse.ts'
import type { ChatStore, MessageStatus } from './store.ts'

export type FinalStatus = Exclude<MessageStatus, 'streaming'>

export interface GenerationOutcome {
  status: FinalStatus
  messageId: string
  createdAt: string
  content: string
  tokensUsed: number | null
  promptTokens: number | null
  doneReason: string | null
  /** What went wrong, for `error` and `interrupted`. */
  error: string | null
}

/** What a generation relays into: its model, and the stored messages of its turn. */
export interface GenerationDetails {
  model: string
  userMessageId: string
  /** The assistant message, already stored as `streaming` (ChatStore.beginTurn). */
  reply: { id: string; createdAt: string }
}

export interface GenerationSettings {
  store: ChatStore
  log: Logger
  checkpointIntervalMs: number
  chatTimeoutMs: number
}

/** Receives each encoded SSE frame of a generation in order, then `null` when it has ended. */
export type FrameListener = (frame: Uint8Array | null) => void

type StopReason = 'cancelled' | 'timeout' | 'interrupted'
export type SetupAbortReason = 'cancelled' | 'shutdown'

const EMPTY_STREAM: ChatStream = {
  abort() {},
  async *[Symbol.asyncIterator]() {},
}

/**
 * The server's running generations, at most one per session and `maxConcurrent` in all. A
 * generation belongs to the server, not to the connection that started it: it leaves the
 * registry when it has ended and its reply is stored.
 */
export class GenerationRegistry {
  readonly maxConcurrent: number
  private readonly slots = new Map<string, Reservation>()
  private draining = false

  constructor(maxConcurrent: number) {
    this.maxConcurrent = maxConcurrent
  }

  /** Holds the session's slot while its generation is being set up; throws 409 or 429. */
  reserve(sessionId: string): Reservation {
    if (this.draining) {
      throw shuttingDown()
    }
    if (this.slots.has(sessionId)) {
      throw new HttpProblem(409, 'conflict', 'A reply is already being generated in this session; cancel it or wait for it to finish.')
    }
    if (this.slots.size >= this.maxConcurrent) {
      throw new HttpProblem(429, 'rate_limit', `The server is generating ${this.maxConcurrent} replies already (MAX_CONCURRENT_CHATS); try again shortly.`, {
        headers: { 'retry-after': '1' },
      })
    }
    const reservation = new Reservation(sessionId, () => this.slots.delete(sessionId))
    this.slots.set(sessionId, reservation)
    return reservation
  }

  /** The running generation of a session, once it has started. */
  get(sessionId: string): Generation | undefined {
    return this.slots.get(sessionId)?.generation
  }

  /** Whether a generation is being set up or running in the session. */
  isBusy(sessionId: string): boolean {
    return this.slots.has(sessionId)
  }

  /**
   * Cancels the session's generation: a running one stops through its stream's own abort; one
   * still waiting for Ollama's answer has that request aborted. Resolves with the stored outcome
   * once the slot is free; undefined when nothing runs.
   */
  cancel(sessionId: string): Promise<GenerationOutcome | null> | undefined {
    const slot = this.slots.get(sessionId)
    if (!slot) return undefined
    if (slot.generation) slot.generation.stop('cancelled')
    else slot.abortSetup('cancelled')
    return slot.settled
  }

  get size(): number {
    return this.slots.size
  }

  /**
   * For shutdown: lets running generations finish for up to `graceMs`, then stops the rest, which
   * are stored as `interrupted`. Resolves when every reply is stored.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true
    const running = () => [...this.slots.values()].flatMap((slot) => (slot.generation ? [slot.generation.outcome] : []))
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
    await Promise.race([Promise.allSettled(running()), grace])
    clearTimeout(timer)
    for (const slot of this.slots.values()) {
      if (slot.generation) slot.generation.stop('interrupted')
      else slot.abortSetup('shutdown')
    }
    await Promise.allSettled(running())
  }
}

export class Reservation {
  readonly sessionId: string
  generation: Generation | undefined
  private readonly setup = new AbortController()
  private readonly freed = Promise.withResolvers<GenerationOutcome | null>()
  private readonly freeSlot: () => void

  constructor(sessionId: string, freeSlot: () => void) {
    this.sessionId = sessionId
    this.freeSlot = freeSlot
  }

  /** Resolves when the slot is free again: with the generation's outcome, or null if none started. */
  get settled(): Promise<GenerationOutcome | null> {
    return this.freed.promise
  }

  /** Aborted when the generation is cancelled (or the server stops) before Ollama answered. */
  get signal(): AbortSignal {
    return this.setup.signal
  }

  /** Why the set-up was aborted, once it was. */
  get abortReason(): SetupAbortReason | undefined {
    return this.setup.signal.aborted ? (this.setup.signal.reason as SetupAbortReason) : undefined
  }

  abortSetup(reason: SetupAbortReason): void {
    this.setup.abort(reason)
  }

  /** Gives the slot back; for a set-up that failed before the generation started. */
  release(): void {
    if (this.generation) return
    this.freeSlot()
    this.freed.resolve(null)
  }

  /** Starts relaying `stream` into a new stored reply; the slot is freed when it has ended. */
  begin(stream: ChatStream, details: GenerationDetails, settings: GenerationSettings): Generation {
    const generation = new Generation(this.sessionId, stream, details, settings, this.freeSlot)
    this.generation = generation
    this.freed.resolve(generation.outcome)
    return generation
  }

  /**
   * For a set-up cancelled before Ollama answered: a generation with nothing to relay, stored and
   * reported like any cancelled one (an empty `cancelled` reply, a `done` with `cancelled`).
   */
  beginCancelled(details: GenerationDetails, settings: GenerationSettings): Generation {
    const generation = this.begin(EMPTY_STREAM, details, settings)
    generation.stop('cancelled')
    return generation
  }
}

export class Generation {
  readonly sessionId: string
  readonly messageId: string
  readonly createdAt: string
  readonly outcome: Promise<GenerationOutcome>
  private readonly frames: Uint8Array[] = []
  private readonly listeners = new Set<FrameListener>()
  private readonly stream: ChatStream
  private readonly settings: GenerationSettings
  private readonly tokenPrefix: string
  private readonly tokenSuffix: string
  private text = ''
  private unsentText = ''
  private flushScheduled = false
  private checkpointTimer: NodeJS.Timeout | undefined
  private stopReason: StopReason | undefined
  private ended = false

  constructor(
    sessionId: string,
    stream: ChatStream,
    { model, userMessageId, reply }: GenerationDetails,
    settings: GenerationSettings,
    onEnded: () => void,
  ) {
    this.sessionId = sessionId
    this.stream = stream
    this.settings = settings
    this.messageId = reply.id
    this.createdAt = reply.createdAt
    // Token events differ only in their text: the rest of the JSON is built once.
    this.tokenPrefix = '{"type":"token","content":'
    this.tokenSuffix = `,"session_id":${JSON.stringify(sessionId)}}`
    this.emit(JSON.stringify({ type: 'start', session_id: sessionId, message_id: this.messageId, user_message_id: userMessageId, model }))
    this.outcome = this.relay().finally(onEnded)
  }

  /**
   * Sends `listener` every frame after event id `afterId` (0: all of them), then each new one as it
   * comes. Returns the function that detaches it.
   */
  subscribe(afterId: number, listener: FrameListener): () => void {
    for (let index = Math.max(0, afterId); index < this.frames.length; index++) listener(this.frames[index]!)
    if (this.ended) {
      listener(null)
      return () => {}
    }
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Stops the generation: Ollama's request is aborted through this stream's own iterator. */
  stop(reason: StopReason): void {
    if (this.ended || this.stopReason) return
    this.stopReason = reason
    this.stream.abort()
  }

  private async relay(): Promise<GenerationOutcome> {
    const timeout = setTimeout(() => this.stop('timeout'), this.settings.chatTimeoutMs)
    let last: ChatResponse | undefined
    let failure: string | null = null
    try {
      for await (const chunk of this.stream) {
        // Every chunk may carry text, the done chunk included.
        if (chunk.message?.content) this.append(chunk.message.content)
        last = chunk
      }
    } catch (error) {
      failure = this.stopReason ? null : (error as Error).message || String(error)
    } finally {
      clearTimeout(timeout)
      clearTimeout(this.checkpointTimer)
      // Also after an error line, whose response body ollama-js leaves open.
      this.stream.abort()
    }
    this.flushTokens()
    return this.finish(last, failure)
  }

  private finish(last: ChatResponse | undefined, failure: string | null): GenerationOutcome {
    const stop = this.stopReason
    const status: FinalStatus =
      stop === 'cancelled' ? 'cancelled' : stop === 'interrupted' ? 'interrupted' : stop === 'timeout' || failure !== null || !last?.done ? 'error' : 'complete'
    const error =
      stop === 'timeout'
        ? `The reply took longer than ${formatMs(this.settings.chatTimeoutMs)} (CHAT_TIMEOUT) and was stopped.`
        : stop === 'interrupted'
          ? 'The server shut down before the reply was finished.'
          : status === 'error'
            ? `Ollama failed during the reply: ${failure ?? 'the stream ended early'}`
            : null
    const complete = status === 'complete' && last
    const outcome: GenerationOutcome = {
      status,
      messageId: this.messageId,
      createdAt: this.createdAt,
      content: this.text,
      tokensUsed: complete ? (last.eval_count ?? null) : null,
      promptTokens: complete ? (last.prompt_eval_count ?? null) : null,
      doneReason: complete ? (last.done_reason || 'stop') : status === 'cancelled' ? 'cancelled' : null,
      error,
    }
    try {
      this.settings.store.finishReply(this.messageId, {
        content: outcome.content,
        status,
        tokensUsed: outcome.tokensUsed ?? undefined,
        promptTokens: outcome.promptTokens ?? undefined,
        doneReason: outcome.doneReason ?? undefined,
      })
    } catch (storeError) {
      this.settings.log.error('reply could not be stored', { message_id: this.messageId, session_id: this.sessionId, error: storeError })
      outcome.status = 'error'
      outcome.error = 'The reply could not be stored.'
    }
    if (outcome.status === 'complete' || outcome.status === 'cancelled') {
      const total = outcome.promptTokens !== null && outcome.tokensUsed !== null ? outcome.promptTokens + outcome.tokensUsed : null
      this.emit(JSON.stringify({
        type: 'done',
        session_id: this.sessionId,
        message_id: this.messageId,
        total_tokens: total,
        prompt_tokens: outcome.promptTokens,
        completion_tokens: outcome.tokensUsed,
        done_reason: outcome.doneReason,
      }))
    } else {
      this.emit(JSON.stringify({ type: 'error', session_id: this.sessionId, message_id: this.messageId, error: outcome.error }))
    }
    // Ended from here on: a client subscribing now gets every frame and then the end at once.
    this.ended = true
    for (const listener of this.listeners) listener(null)
    this.listeners.clear()
    return outcome
  }

  private append(piece: string): void {
    this.text += piece
    // The first chunk of a burst leaves at once; chunks that arrive with it follow as one event
    // on the next turn of the event loop: one write per burst, not per chunk.
    if (this.flushScheduled) {
      this.unsentText += piece
    } else {
      this.emitToken(piece)
      this.flushScheduled = true
      setImmediate(this.flushTokens)
    }
    this.checkpointTimer ??= setTimeout(this.checkpoint, this.settings.checkpointIntervalMs)
  }

  private readonly flushTokens = (): void => {
    this.flushScheduled = false
    if (!this.unsentText) return
    const text = this.unsentText
    this.unsentText = ''
    this.emitToken(text)
  }

  private emitToken(text: string): void {
    this.emit(this.tokenPrefix + JSON.stringify(text) + this.tokenSuffix)
  }

  private readonly checkpoint = (): void => {
    this.checkpointTimer = undefined
    try {
      this.settings.store.checkpointReply(this.messageId, this.text)
    } catch (error) {
      this.settings.log.warn('checkpoint failed', { message_id: this.messageId, error })
    }
  }

  private emit(json: string): void {
    const frame = encodeEvent(this.frames.length + 1, json)
    this.frames.push(frame)
    for (const listener of this.listeners) listener(frame)
  }
}
