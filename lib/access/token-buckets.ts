/** One bucket's answer: whether the request may go, and what the RateLimit headers say. */
export interface BucketAnswer {
  allowed: boolean
  /** Whole requests left now. */
  remaining: number
  /** Seconds until one more request is allowed (0 when one is). */
  retryAfterSeconds: number
  /** Seconds until the bucket is full again. */
  resetSeconds: number
}

interface Bucket {
  tokens: number
  at: number
}

/** Buckets that hold at most this many before the full ones are forgotten (a full bucket is the default). */
const PRUNE_AT = 10_000

/**
 * Token buckets by key: each holds `capacity` requests and refills `capacity` per `windowMs`,
 * continuously, so bursts up to the capacity pass and the average rate is capacity per window.
 */
export class TokenBuckets {
  readonly capacity: number
  readonly windowMs: number
  private readonly buckets = new Map<string, Bucket>()

  constructor(capacity: number, windowMs: number) {
    this.capacity = capacity
    this.windowMs = windowMs
  }

  /** Takes one request from `key`'s bucket when it has one. */
  take(key: string, now = Date.now()): BucketAnswer {
    const bucket = this.refilled(key, now)
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    const perMs = this.capacity / this.windowMs
    const missing = Math.max(0, 1 - bucket.tokens)
    return {
      allowed,
      remaining: Math.floor(bucket.tokens),
      retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(missing / perMs / 1000)),
      resetSeconds: Math.ceil((this.capacity - bucket.tokens) / perMs / 1000),
    }
  }

  private refilled(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key)
    if (!bucket) {
      if (this.buckets.size >= PRUNE_AT) this.prune(now)
      bucket = { tokens: this.capacity, at: now }
      this.buckets.set(key, bucket)
      return bucket
    }
    bucket.tokens = Math.min(this.capacity, bucket.tokens + ((now - bucket.at) * this.capacity) / this.windowMs)
    bucket.at = now
    return bucket
  }

  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.capacity) / this.windowMs >= this.capacity) this.buckets.delete(key)
    }
  }
}
