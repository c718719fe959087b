import { Generation, type GenerationDetails, type GenerationOutcome, type GenerationSettings } from './generation.ts'
import type { ChatStream } from '../ollama/client.ts'
import { HttpProblem, shuttingDown } from '../shared/problem.ts'
import { DEFAULT_REPLY_EVENT_LIMITS, type ReplyEventLimits, type ReplyEventLog } from './reply-events.ts'
import type { SharedSlots } from '../store/cluster.ts'
import { randomUUID } from 'node:crypto'

export type SetupAbortReason = 'cancelled' | 'shutdown'

/** How long an ended reply's events are kept for a client that comes back after its end (as stream_events on PostgreSQL). */
export const ENDED_REPLAY_MS = 60_000

/** A stream with nothing in it: for a generation that has nothing to relay from Ollama first. */
export const EMPTY_STREAM: ChatStream = {
  abort() {},
  async *[Symbol.asyncIterator]() {},
}

/**
 * The server's chats, at most one per session and `maxConcurrent` in all, counted from the moment
 * a chat is accepted (its slot is reserved before anything is stored or Ollama is asked) until
 * its reply is stored. A generation belongs to the server, not to the connection that started it.
 */
export class GenerationRegistry {
  readonly maxConcurrent: number
  readonly maxPerUser: number
  private readonly eventLimits: ReplyEventLimits
  private readonly slots = new Map<string, Reservation>()
  /** Slots held per user, for the users the per-user limit applies to. */
  private readonly perUser = new Map<string, number>()
  private draining = false
  /** Where the per-user limit is counted across instances (PostgreSQL); null: here alone. */
  private readonly sharedSlots: SharedSlots | null
  /** The events of each session's last reply that ended here, for ENDED_REPLAY_MS, oldest first. */
  private readonly ended = new Map<string, { events: ReplyEventLog; at: number }>()

  constructor(maxConcurrent: number, eventLimits: ReplyEventLimits = DEFAULT_REPLY_EVENT_LIMITS, maxPerUser = Infinity, sharedSlots: SharedSlots | null = null) {
    this.maxConcurrent = maxConcurrent
    this.eventLimits = eventLimits
    this.maxPerUser = maxPerUser
    this.sharedSlots = sharedSlots
  }

  /**
   * Holds the session's slot while its generation is being set up; throws 409, 429 or 503.
   * `userId` counts the slot against that user's MAX_CONCURRENT_CHATS_PER_USER (on every instance
   * together when the slots are shared); null (the one local user while AUTH is off) counts only
   * against this server's MAX_CONCURRENT_CHATS.
   */
  async reserve(sessionId: string, userId: string | null): Promise<Reservation> {
    const reservation = this.reserveHere(sessionId, userId)
    if (userId === null || !this.sharedSlots) return reservation
    const slotId = randomUUID()
    let acquired: boolean
    try {
      acquired = await this.sharedSlots.acquire(slotId, userId, this.maxPerUser)
    } catch (error) {
      reservation.release()
      throw error
    }
    if (!acquired) {
      reservation.release()
      throw this.userLimitReached()
    }
    const { sharedSlots } = this
    reservation.onFreed(() => void sharedSlots.release(slotId, userId))
    return reservation
  }

  private userLimitReached(): HttpProblem {
    return new HttpProblem(429, 'rate_limit', `You have ${this.maxPerUser} replies being generated already (MAX_CONCURRENT_CHATS_PER_USER); try again when one has finished.`, {
      headers: { 'retry-after': '1' },
    })
  }

  private reserveHere(sessionId: string, userId: string | null): Reservation {
    if (this.draining) {
      throw shuttingDown()
    }
    if (this.slots.has(sessionId)) {
      throw new HttpProblem(409, 'conflict', 'A reply is already being generated in this session; cancel it or wait for it to finish.')
    }
    const held = userId === null ? 0 : (this.perUser.get(userId) ?? 0)
    if (held >= this.maxPerUser) throw this.userLimitReached()
    if (this.slots.size >= this.maxConcurrent) {
      throw new HttpProblem(429, 'rate_limit', `The server is generating ${this.maxConcurrent} replies already (MAX_CONCURRENT_CHATS); try again shortly.`, {
        headers: { 'retry-after': '1' },
      })
    }
    if (userId !== null) this.perUser.set(userId, held + 1)
    const reservation: Reservation = new Reservation(sessionId, this.eventLimits, () => {
      this.slots.delete(sessionId)
      if (reservation.generation) this.keepEnded(sessionId, reservation.generation.events)
      if (userId === null) return
      const left = this.perUser.get(userId)! - 1
      if (left === 0) this.perUser.delete(userId)
      else this.perUser.set(userId, left)
    })
    this.slots.set(sessionId, reservation)
    return reservation
  }

  private keepEnded(sessionId: string, events: ReplyEventLog): void {
    const now = performance.now()
    for (const [id, entry] of this.ended) {
      if (now - entry.at < ENDED_REPLAY_MS) break
      this.ended.delete(id)
    }
    this.ended.delete(sessionId)
    this.ended.set(sessionId, { events, at: now })
  }

  /** The events of the session's last reply, when it ended here within ENDED_REPLAY_MS. */
  endedEvents(sessionId: string): ReplyEventLog | undefined {
    const entry = this.ended.get(sessionId)
    return entry && performance.now() - entry.at < ENDED_REPLAY_MS ? entry.events : undefined
  }

  /** The running generation of a session, once it has started. */
  get(sessionId: string): Generation | undefined {
    return this.slots.get(sessionId)?.generation
  }

  /** The sessions with a chat being set up or running. */
  busySessions(): string[] {
    return [...this.slots.keys()]
  }

  /** Whether a chat is being set up or running in the session. */
  isBusy(sessionId: string): boolean {
    return this.slots.has(sessionId)
  }

  /**
   * Cancels the session's chat: a running generation stops through its stream's own abort; one
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
   * For shutdown: refuses new chats, lets every accepted one (running, or still waiting for
   * Ollama's first answer) finish for up to `graceMs`, then stops the rest, which are stored as
   * `interrupted`. Resolves when every reply is stored and every slot is free.
   */
  async drain(graceMs: number): Promise<void> {
    this.draining = true
    const allSettled = () => Promise.allSettled([...this.slots.values()].map((slot) => slot.settled))
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))
    await Promise.race([allSettled(), grace])
    clearTimeout(timer)
    for (const slot of this.slots.values()) {
      if (slot.generation) slot.generation.stop('interrupted')
      else slot.abortSetup('shutdown')
    }
    await allSettled()
  }
}

export class Reservation {
  readonly sessionId: string
  generation: Generation | undefined
  private readonly setup = new AbortController()
  private readonly freed = Promise.withResolvers<GenerationOutcome | null>()
  private readonly eventLimits: ReplyEventLimits
  private readonly freeSlot: () => void
  private readonly onFree: Array<() => void> = []

  constructor(sessionId: string, eventLimits: ReplyEventLimits, freeSlot: () => void) {
    this.sessionId = sessionId
    this.eventLimits = eventLimits
    // Once only: a slot given back twice would give its user a slot it does not hold.
    let freed = false
    this.freeSlot = () => {
      if (freed) return
      freed = true
      freeSlot()
      for (const then of this.onFree) then()
    }
  }

  /** Runs `then` when the slot is given back. */
  onFreed(then: () => void): void {
    this.onFree.push(then)
  }

  /** Resolves when the slot is free again: with the generation's outcome, or null if none started. */
  get settled(): Promise<GenerationOutcome | null> {
    return this.freed.promise
  }

  /** Aborted when the chat is cancelled (or the server stops) before Ollama answered. */
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
    const generation = new Generation(this.sessionId, stream, details, settings, this.eventLimits, this.freeSlot)
    this.generation = generation
    this.freed.resolve(generation.outcome)
    return generation
  }

  /**
   * For a set-up aborted before Ollama answered: a generation with nothing to relay, stored and
   * reported like any stopped one (`cancelled` with a `done`, or `interrupted` with an `error`).
   */
  beginAborted(details: GenerationDetails, settings: GenerationSettings): Generation {
    const generation = this.begin(EMPTY_STREAM, details, settings)
    generation.stop(this.abortReason === 'cancelled' ? 'cancelled' : 'interrupted')
    return generation
  }
}
