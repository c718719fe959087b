import { HttpProblem } from '../shared/problem.ts'

/**
 * How many images an instance decodes and re-encodes at once (IMAGE_CONCURRENCY), and how many
 * more may wait for a turn: a large photo decodes to hundreds of megabytes of pixels, so eight
 * chats of four photos at once would otherwise hold gigabytes together. Past the queue: 503 with
 * Retry-After, before the image is decoded.
 */
export class ImageGate {
  readonly concurrency: number
  readonly maxWaiting: number
  private running = 0
  private readonly waiting: Array<() => void> = []

  constructor(concurrency: number, maxWaiting = 16 * concurrency) {
    this.concurrency = concurrency
    this.maxWaiting = maxWaiting
  }

  /** Runs `work` once a turn is free (at once when one is); 503 when too many wait already. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new HttpProblem(503, 'busy', `This server is processing ${this.running} images and ${this.waiting.length} more wait (IMAGE_CONCURRENCY ${this.concurrency}); send them again in a moment.`, { headers: { 'retry-after': '2' } })
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve))
    } else {
      this.running++
    }
    try {
      return await work()
    } finally {
      // The turn passes to the next in line, or is given back.
      const next = this.waiting.shift()
      if (next) next()
      else this.running--
    }
  }

  /** Images being processed now, and waiting (for tests and metrics). */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length }
  }
}
