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

import type { SharedBuckets } from '../store/cluster.ts'

/** What the RateLimit headers and a 429 say, from a bucket's tokens after a take. */
function answerOf(allowed: boolean, tokens: number, capacity: number, windowMs: number): BucketAnswer {
  const perMs = capacity / windowMs
  const missing = Math.max(0, 1 - tokens)
  return {
    allowed,
    remaining: Math.floor(tokens),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(missing / perMs / 1000)),
    resetSeconds: Math.ceil((capacity - tokens) / perMs / 1000),
  }
}

/** Token buckets by key, here or (several instances) in the database. */
export interface RateBuckets {
  readonly capacity: number
  readonly windowMs: number
  take(key: string): Promise<BucketAnswer>
}

/** The buckets every instance on a PostgreSQL database shares: one statement per take. */
export class DatabaseBuckets implements RateBuckets {
  readonly capacity: number
  readonly windowMs: number
  private readonly shared: SharedBuckets
  /** Keeps one limit's keys apart from another's in the one table. */
  private readonly prefix: string

  constructor(capacity: number, windowMs: number, shared: SharedBuckets, prefix: string) {
    this.capacity = capacity
    this.windowMs = windowMs
    this.shared = shared
    this.prefix = prefix
  }

  async take(key: string): Promise<BucketAnswer> {
    const { allowed, tokens } = await this.shared.take(`${this.prefix}:${key}`, this.capacity, this.windowMs)
    return answerOf(allowed, tokens, this.capacity, this.windowMs)
  }
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
export class TokenBuckets implements RateBuckets {
  readonly capacity: number
  readonly windowMs: number
  private readonly buckets = new Map<string, Bucket>()

  constructor(capacity: number, windowMs: number) {
    this.capacity = capacity
    this.windowMs = windowMs
  }

  /** Takes one request from `key`'s bucket when it has one. */
  async take(key: string): Promise<BucketAnswer> {
    const bucket = this.refilled(key, Date.now())
    const allowed = bucket.tokens >= 1
    if (allowed) bucket.tokens -= 1
    return answerOf(allowed, bucket.tokens, this.capacity, this.windowMs)
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
