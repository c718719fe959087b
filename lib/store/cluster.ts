/**
 * What moves between instances that share one database (PostgreSQL only; a SQLite file has one
 * server): a running reply's events, its cancel, and the limits every instance counts together.
 * The Ollama stream of a reply stays in the process that started it, its owner.
 */
import type { Logger } from '../observability/log.ts'
import type { EventSource } from '../shared/sse.ts'

/** What a client was sent of a reply's own text and reasoning (since its last tool step). */
export interface SentText {
  text: string
  thinking: string
}

export const NOTHING_SENT: SentText = { text: '', thinking: '' }

/** A stream's frames as its owner sends them to followers on other instances. */
export interface StreamPublisher {
  /** Frame `seq` (its SSE text); frames come in order, without gaps. */
  push(seq: number, frame: string): void
  /** No frame follows: what is left is written now. */
  end(): void
}

/**
 * How a follower on another instance learns that a stream is over when its frames stop short of
 * the last one (its owner died, its last batch is not written yet, or a batch is missing): false
 * while it runs; else the frames to send last, read from the store, the first of them numbered
 * `nextSeq` or later. `sentText` resolves to the reply text and reasoning the follower's client
 * has (token and thinking events since the last tool result), or null when that cannot be known.
 */
export type StreamEnded = (nextSeq: number, sentText: () => Promise<SentText | null>) => Promise<string[] | false>

/** What a cancel asked on another instance stops: a session's reply, or a response. */
export type CancelTarget = { kind: 'reply'; sessionId: string } | { kind: 'response'; id: string }

/** What the app gives the cluster when it joins: how to stop what runs here. */
export interface ClusterMember {
  cancel(target: CancelTarget): void
  /** A tool call's request for input (lib/store/input-store.ts) was answered on another instance: its call, if it waits here, goes on. */
  inputAnswered(inputId: string): void
  /** The sessions with a chat set up or running here (their streaming rows are this instance's to keep). */
  busySessions(): string[]
  log: Logger
}

/** The cross-instance MAX_CONCURRENT_CHATS_PER_USER: a slot per running chat, counted per user. */
export interface SharedSlots {
  /** Takes a slot for `userId` when it holds fewer than `max`; false when it holds `max` already. */
  acquire(slotId: string, userId: string, max: number): Promise<boolean>
  /** Gives `userId`'s slot back; an acquire for that user on this instance waits for it. */
  release(slotId: string, userId: string): Promise<void>
}

/** A token bucket's state after one take, for TokenBuckets' answer. */
export interface BucketTake {
  allowed: boolean
  tokens: number
}

/** Token buckets (RATE_LIMIT, failed credentials) kept in the database, shared by every instance. */
export interface SharedBuckets {
  take(key: string, capacity: number, windowMs: number): Promise<BucketTake>
}

export interface Cluster {
  /** This instance's id (INSTANCE_ID, else host name and pid). */
  readonly instanceId: string
  readonly slots: SharedSlots
  readonly buckets: SharedBuckets
  /**
   * Registers this instance and its lease, then keeps renewing it, closes the replies of instances
   * whose lease ran out, and listens for cancels and events. (What a previous run under this id
   * left running is closed by start-up: ChatStore.interruptStreamingReplies.)
   */
  join(member: ClusterMember): Promise<void>
  /** Writes what publishers still hold, stops listening, and gives up the lease (after a drain). */
  leave(): Promise<void>
  /** Where the owner of stream `streamId` (a reply's message id, a response's id) sends its frames. */
  publisher(streamId: string): StreamPublisher
  /**
   * The frames of a stream another instance runs, from after frame `after`, then live to its end.
   * `closing`: the frame sent when this instance stops first (telling the client to reconnect).
   */
  follow(streamId: string, after: number, ended: StreamEnded, closing?: string): EventSource
  /** For a shutdown: ends every follower here of another instance's stream, each with its closing frame. */
  closeFollowers(): void
  /** Marks a cancel and wakes the owner; false when nothing runs there. */
  requestCancel(target: CancelTarget): Promise<boolean>
  /** Wakes the instance whose tool call waits for the input request `inputId`, once its answer is recorded. */
  notifyInput(inputId: string): Promise<void>
  /** Instances holding a lease now (this one included). */
  liveInstances(): Promise<number>
}
