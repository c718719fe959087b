/**
 * When a streaming reply's next checkpoint starts, so that it commits within CHECKPOINT_INTERVAL
 * of the text it stores having arrived (docs/reliability.md). Under load a checkpoint's timer
 * fires late (a busy event loop) and its write waits (a busy database): together up to a few
 * hundred milliseconds past the interval with 300 chats streaming on this 2-core machine. The
 * clock learns that overshoot from the checkpoints that commit (a smoothed mean and deviation, as
 * TCP estimates a round trip) and starts the next ones that much earlier, never before half the
 * interval (at most twice the writes).
 */
export class CheckpointClock {
  private meanOvershootMs = 0
  private overshootDeviationMs = 0

  private readonly intervalMs: number

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs
  }

  /** How long after its text arrives a checkpoint starts. */
  delayMs(): number {
    const margin = this.meanOvershootMs + 2 * this.overshootDeviationMs
    return Math.max(this.intervalMs / 2, this.intervalMs - margin)
  }

  /** A checkpoint started `delayMs` after its text arrived committed `lagMs` after it. */
  committed(delayMs: number, lagMs: number): void {
    const overshoot = Math.max(0, lagMs - delayMs)
    this.overshootDeviationMs += (Math.abs(overshoot - this.meanOvershootMs) - this.overshootDeviationMs) / 4
    this.meanOvershootMs += (overshoot - this.meanOvershootMs) / 8
  }
}
