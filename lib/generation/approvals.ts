import { timestamp } from '../shared/clock.ts'
import { LOCAL_USER_ID, type PausedReply } from '../store/chat-store.ts'
import type { ApprovalStore } from '../store/approval-store.ts'
import type { SessionStore } from '../store/session-store.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { Logger } from '../observability/log.ts'

/** A reply that could not resume (no slot free) is tried again after this. */
const RETRY_MS = 1_000
/** How long the sweep waits at most: calls paused on another instance (PostgreSQL) are seen within it. */
const LOOK_AGAIN_MS = 60_000
/** setTimeout's longest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * The clock of tool-call approvals (docs/tools.md): a call nobody answers within
 * TOOL_APPROVAL_TIMEOUT counts as denied, and a reply whose every call is answered (by a user, by
 * the clock, or before a restart) is resumed here. One timer, set for the next expiry the store
 * knows of, at most a minute ahead; it never holds up a shutdown.
 */
/** What the clock works with; `resume` runs a reply on (lib/generation/chat-turn.ts's resumeTurn, bound by lib/app.ts). */
export interface ApprovalClockParts {
  store: ApprovalStore & Pick<SessionStore, 'sessionOwner'>
  log: Logger
  resume(paused: PausedReply, userId: string | null): Promise<void>
}

export class ApprovalClock {
  private readonly app: ApprovalClockParts
  private timer: NodeJS.Timeout | undefined
  private armedFor = Infinity
  private closed = false
  private sweeping: Promise<void> | undefined

  constructor(app: ApprovalClockParts) {
    this.app = app
  }

  /** Denies what is due, resumes what is answered, and sets the timer for what comes next. */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined))
    return this.sweeping
  }

  /** A reply paused: the timer is set for its calls if they are due before what it waits for. */
  async refresh(): Promise<void> {
    const next = await this.app.store.nextApprovalExpiry()
    if (next !== null) this.arm(Date.parse(next))
  }

  /**
   * Resumes a reply whose calls are all answered; a server too busy to take it now (or one
   * shutting down) leaves it waiting for the next sweep.
   */
  async resume(paused: PausedReply, userId: string | null): Promise<void> {
    try {
      await this.app.resume(paused, userId)
    } catch (error) {
      // No slot free (its user's MAX_CONCURRENT_CHATS_PER_USER, or the server's): it waits its turn, queued.
      const busy = error instanceof HttpProblem && error.status === 429
      this.app.log[busy ? 'debug' : 'warn']('a reply with answered tool calls could not resume now; it is tried again', { reply_id: paused.replyId, error: (error as Error).message })
      this.arm(Date.now() + RETRY_MS)
    }
  }

  /** The user whose per-user limits a session's replies count against; null for the local user (AUTH off), who has none. */
  private async limitedOwnerOf(sessionId: string): Promise<string | null> {
    const owner = await this.app.store.sessionOwner(sessionId)
    return owner === undefined || owner === LOCAL_USER_ID ? null : owner
  }

  close(): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private async sweepOnce(): Promise<void> {
    try {
      const due = await this.app.store.expireApprovals(timestamp())
      const answered = await this.app.store.answeredReplies()
      const replies = new Map([...due, ...answered].map((paused) => [paused.replyId, paused]))
      // Each counted against its owner's limits, as the answer that resumed it would be.
      for (const paused of replies.values()) await this.resume(paused, await this.limitedOwnerOf(paused.sessionId))
      const next = await this.app.store.nextApprovalExpiry()
      this.armedFor = Infinity
      this.arm(Math.min(next === null ? Infinity : Date.parse(next), Date.now() + LOOK_AGAIN_MS))
    } catch (error) {
      this.app.log.warn('the tool approval sweep failed; it runs again', { error: (error as Error).message })
      this.armedFor = Infinity
      this.arm(Date.now() + LOOK_AGAIN_MS)
    }
  }

  private arm(at: number): void {
    if (this.closed || at >= this.armedFor) return
    clearTimeout(this.timer)
    this.armedFor = at
    this.timer = setTimeout(() => {
      this.armedFor = Infinity
      void this.sweep()
    }, Math.min(MAX_DELAY_MS, Math.max(0, at - Date.now())))
    this.timer.unref()
  }
}
