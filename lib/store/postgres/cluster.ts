import type { Sql } from 'postgres'
import { MAX_FOLLOWERS, tooManyFollowers, type EventSource } from '../../shared/sse.ts'
import type { BucketTake, CancelTarget, Cluster, ClusterMember, SharedBuckets, SharedSlots, StreamEnded, StreamPublisher } from '../cluster.ts'
import { BatchPublisher, RemoteFollower, type Batch } from './streams.ts'

/** Wakes followers: the payload is the stream whose frames were written (or that was closed). */
const EVENTS_CHANNEL = 'chat_ollama_events'
/** Wakes the owner of a reply (`reply:<session id>`) or response (`response:<id>`) cancelled elsewhere, or of a tool call whose input request was answered (`input:<id>`). */
const CANCEL_CHANNEL = 'chat_ollama_cancel'
/** A batch whose write failed is written again after this, doubling up to BATCH_RETRY_MAX_MS. */
const BATCH_RETRY_FIRST_MS = 50
const BATCH_RETRY_MAX_MS = 1000
/** Once this instance leaves, a batch that still cannot be written is given up after this long. */
const LEAVING_WRITE_GRACE_MS = 1000
/** A stream's frames are kept this long after its last frame, for followers still catching up. */
const KEEP_ENDED_STREAMS = '1 minute'
/** Frames of a stream that never wrote its last frame (its owner died) go after this long. */
const KEEP_ABANDONED_STREAMS = '1 hour'
/** A streaming row begun after the list of busy sessions was taken is not a stray: only older ones are. */
const STRAY_AFTER = '1 minute'
const INTERRUPTED_RESPONSE_ERROR = { code: 'server_error', message: 'The server running the response stopped before it was finished.' }

const background = (promise: Promise<unknown>) => void promise.catch(() => {})

/**
 * Several instances on one PostgreSQL database: leases in `instances`, frames in `stream_events`
 * woken by NOTIFY, cancels by a flag and a NOTIFY, and the shared limits (migrations/postgres/002).
 */
export class PostgresCluster implements Cluster {
  readonly instanceId: string
  readonly slots: SharedSlots
  readonly buckets: SharedBuckets
  private readonly sql: Sql
  private readonly ready: Promise<unknown>
  private readonly leaseMs: number
  /** Followers on this instance of streams running elsewhere, by stream id. */
  private readonly followers = new Map<string, Set<RemoteFollower>>()
  /** Writes not awaited by their callers (frames, slot releases), awaited by leave(). */
  private readonly pending = new Set<Promise<unknown>>()
  private member: ClusterMember | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined
  private unlisten: Array<() => Promise<void>> = []
  /** Slots this instance is giving back, by user: a slot freed here is free for this user's next chat here. */
  private readonly releasing = new Map<string, Set<Promise<void>>>()
  /**
   * Since when the database has answered every heartbeat (performance.now()); undefined while it
   * does not. Other instances' replies are swept only once it has answered for a whole lease: an
   * outage shorter than a lease kept every instance from renewing, and each must get its turn.
   */
  private workingSince: number | undefined
  /** Set by leave(): batch writes still failing are given up soon after. */
  private leavingAt: number | undefined

  constructor(sql: Sql, ready: Promise<unknown>, instanceId: string, leaseMs: number) {
    this.sql = sql
    this.ready = ready
    this.instanceId = instanceId
    this.leaseMs = leaseMs
    this.slots = {
      acquire: async (slotId, userId, max) => {
        const freeing = this.releasing.get(userId)
        if (freeing) await Promise.all(freeing)
        const [row] = await (await this.db())`
          WITH counted AS (
            INSERT INTO chat_slot_counts AS c (user_id, running) VALUES (${userId}, 1)
            ON CONFLICT (user_id) DO UPDATE SET running = c.running + 1 WHERE c.running < ${max}
            RETURNING user_id)
          INSERT INTO chat_slots (id, user_id, instance_id) SELECT ${slotId}, user_id, ${this.instanceId} FROM counted
          RETURNING id`
        return row !== undefined
      },
      release: (slotId, userId) => {
        const released = this.track(this.db().then((sql) => sql`
          WITH freed AS (DELETE FROM chat_slots WHERE id = ${slotId} RETURNING user_id)
          UPDATE chat_slot_counts c SET running = c.running - 1 FROM freed WHERE c.user_id = freed.user_id`))
        const freeing = this.releasing.get(userId) ?? new Set()
        this.releasing.set(userId, freeing.add(released))
        void released.finally(() => {
          freeing.delete(released)
          if (freeing.size === 0 && this.releasing.get(userId) === freeing) this.releasing.delete(userId)
        })
        return released
      },
    }
    this.buckets = {
      take: async (key, capacity, windowMs): Promise<BucketTake> => {
        // The bucket refilled to now, then one taken when it holds one: the same arithmetic as
        // lib/access/token-buckets.ts, in one statement, so concurrent takes on any instance add up.
        const perSecond = (capacity * 1000) / windowMs
        const sql = await this.db()
        const refilled = sql`least(${capacity}::float8, b.tokens + extract(epoch FROM now() - b.at) * ${perSecond}::float8)`
        const [row] = await sql`
          INSERT INTO rate_buckets AS b (key, tokens, allowed, at) VALUES (${key}, ${capacity - 1}, true, now())
          ON CONFLICT (key) DO UPDATE SET
            tokens = ${refilled} - CASE WHEN ${refilled} >= 1 THEN 1 ELSE 0 END, allowed = ${refilled} >= 1, at = now()
          RETURNING b.tokens, b.allowed`
        return { allowed: row!.allowed, tokens: Number(row!.tokens) }
      },
    }
  }

  private async db(): Promise<Sql> {
    await this.ready
    return this.sql
  }

  /** Keeps a write that nobody awaits until leave(); its failure is logged, never thrown. */
  private track(write: Promise<unknown>): Promise<void> {
    const tracked = write.then(
      () => {},
      (error: unknown) => this.member?.log.warn('a write for the other instances failed', { error }),
    )
    this.pending.add(tracked)
    void tracked.finally(() => this.pending.delete(tracked))
    return tracked
  }

  async join(member: ClusterMember): Promise<void> {
    this.member = member
    const sql = await this.db()
    await this.renewLease(true)
    this.workingSince = performance.now()
    for (const [channel, onNotify] of [
      [EVENTS_CHANNEL, (streamId: string) => this.wake(streamId)],
      [CANCEL_CHANNEL, (target: string) => this.cancelled(target)],
    ] as const) {
      // onlisten runs again after every reconnect: what was missed meanwhile is read again.
      const { unlisten } = await sql.listen(channel, onNotify, () => (channel === EVENTS_CHANNEL ? this.wakeAll() : background(this.pendingCancels())))
      this.unlisten.push(unlisten)
    }
    const every = Math.max(100, Math.floor(this.leaseMs / 3))
    this.heartbeat = setInterval(() => {
      this.beating ??= this.beat().finally(() => (this.beating = undefined))
    }, every)
    this.heartbeat.unref()
  }

  async leave(): Promise<void> {
    clearInterval(this.heartbeat)
    this.leavingAt = performance.now()
    await this.beating
    while (this.pending.size > 0) await Promise.all(this.pending)
    for (const unlisten of this.unlisten) await unlisten().catch(() => {})
    this.unlisten = []
    for (const set of this.followers.values()) for (const follower of set) follower.stop()
    await (await this.db())`DELETE FROM instances WHERE id = ${this.instanceId}`
  }

  /**
   * One heartbeat: the lease renewed first, then dead instances' replies closed (once the database
   * has worked for a whole lease), strays released, cancels not yet seen acted on.
   */
  private async beat(): Promise<void> {
    try {
      await this.renewLease(false)
      this.workingSince ??= performance.now()
      if (performance.now() - this.workingSince >= this.leaseMs) await this.sweep()
      await this.releaseStrays()
      await this.pendingCancels()
    } catch (error) {
      this.workingSince = undefined
      this.member?.log.warn('instance heartbeat failed', { error })
    }
  }

  private async renewLease(first: boolean): Promise<void> {
    const [row] = await (await this.db())`
      INSERT INTO instances (id, started_at, lease_until) VALUES (${this.instanceId}, now(), now() + ${this.leaseMs} * interval '1 millisecond')
      ON CONFLICT (id) DO UPDATE SET lease_until = EXCLUDED.lease_until
      RETURNING (xmax = 0) AS inserted`
    if (!first && row!.inserted) {
      this.member?.log.warn('this instance\'s lease had run out: the other instances may have closed its replies', { instance_id: this.instanceId, lease_ms: this.leaseMs })
    }
  }

  /**
   * Closes what instances whose lease ran out left running: replies `interrupted` and responses
   * `failed` with their checkpointed text, their chat slots given back, their followers woken.
   * Rows without a live owner (from before several instances) count as a dead instance's.
   */
  private async sweep(): Promise<void> {
    const sql = await this.db()
    const orphaned = (table: 'messages' | 'responses') =>
      sql`(${sql(table)}.owner_instance IS NULL OR ${sql(table)}.owner_instance IN (SELECT id FROM dead)
        OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = ${sql(table)}.owner_instance))`
    const [swept] = await sql`
      WITH dead AS (DELETE FROM instances WHERE lease_until < now() RETURNING id),
      replies AS (
        UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' AND ${orphaned('messages')} RETURNING id),
      responses AS (
        UPDATE responses SET status = 'failed', error = ${sql.json(INTERRUPTED_RESPONSE_ERROR)}, completed_at = now()
        WHERE status IN ('queued', 'in_progress') AND ${orphaned('responses')} RETURNING id),
      freed AS (
        DELETE FROM chat_slots s WHERE s.instance_id IN (SELECT id FROM dead)
          OR NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = s.instance_id) RETURNING user_id),
      -- Imports a dead instance was writing (owned by importing:<its id> until finished).
      imports AS (DELETE FROM sessions WHERE owner_id IN (SELECT 'importing:' || id FROM dead)),
      recounted AS (
        UPDATE chat_slot_counts c SET running = c.running - f.n
        FROM (SELECT user_id, count(*)::int AS n FROM freed GROUP BY user_id) f WHERE c.user_id = f.user_id RETURNING 1),
      woken AS (SELECT pg_notify(${EVENTS_CHANNEL}, id) FROM (SELECT id FROM replies UNION ALL SELECT id FROM responses) closed)
      SELECT (SELECT count(*) FROM replies)::int AS replies, (SELECT count(*) FROM responses)::int AS responses,
        (SELECT count(*) FROM recounted)::int AS recounted, (SELECT count(*) FROM woken)::int AS woken`
    await sql`
      DELETE FROM stream_events WHERE stream_id IN (
        SELECT stream_id FROM stream_events GROUP BY stream_id
        HAVING (bool_or(final) AND max(written_at) < now() - ${KEEP_ENDED_STREAMS}::interval) OR max(written_at) < now() - ${KEEP_ABANDONED_STREAMS}::interval)`
    if (swept!.replies + swept!.responses > 0) {
      this.member?.log.warn('replies of an instance that stopped renewing its lease are now interrupted', { replies: swept!.replies, responses: swept!.responses })
    }
  }

  /**
   * This instance's streaming rows of sessions where nothing runs here any more (a reply whose
   * final write failed) are closed as interrupted: otherwise their session would refuse every
   * chat (one streaming reply per session) for as long as this instance lives.
   */
  private async releaseStrays(): Promise<void> {
    const busy = this.member?.busySessions() ?? []
    const sql = await this.db()
    const strays = await sql`
      UPDATE messages SET status = 'interrupted'
      WHERE status = 'streaming' AND owner_instance = ${this.instanceId} AND NOT (session_id = ANY(${busy}::text[]))
        AND created_at < now() - ${STRAY_AFTER}::interval
      RETURNING id`
    if (strays.length === 0) return
    this.member?.log.warn('streaming replies nothing runs here any more are now interrupted', { count: strays.length })
    for (const { id } of strays) this.wake(id as string)
    await sql`SELECT pg_notify(${EVENTS_CHANNEL}, id) FROM unnest(${strays.map((row) => row.id as string)}::text[]) AS id`
  }

  /** Cancels asked elsewhere for what runs here, whose NOTIFY this instance may have missed. */
  private async pendingCancels(): Promise<void> {
    const rows = await (await this.db())`
      SELECT 'reply:' || session_id AS target FROM messages WHERE status = 'streaming' AND cancel_requested AND owner_instance = ${this.instanceId}
      UNION ALL
      SELECT 'response:' || id FROM responses WHERE status IN ('queued', 'in_progress') AND cancel_requested AND owner_instance = ${this.instanceId}
      UNION ALL
      SELECT 'input:' || id FROM tool_inputs WHERE answer IS NOT NULL AND owner_instance = ${this.instanceId}`
    for (const row of rows) this.cancelled(row.target as string)
  }

  private cancelled(target: string): void {
    const [kind, id] = [target.slice(0, target.indexOf(':')), target.slice(target.indexOf(':') + 1)]
    if (kind === 'reply') this.member?.cancel({ kind: 'reply', sessionId: id })
    else if (kind === 'response') this.member?.cancel({ kind: 'response', id })
    else if (kind === 'input') this.member?.inputAnswered(id)
  }

  async notifyInput(inputId: string): Promise<void> {
    await (await this.db())`SELECT pg_notify(${CANCEL_CHANNEL}, ${`input:${inputId}`})`
  }

  async requestCancel(target: CancelTarget): Promise<boolean> {
    const sql = await this.db()
    const rows = target.kind === 'reply'
      ? await sql`
          WITH marked AS (UPDATE messages SET cancel_requested = true WHERE session_id = ${target.sessionId} AND status = 'streaming' RETURNING id)
          SELECT pg_notify(${CANCEL_CHANNEL}, ${`reply:${target.sessionId}`}) FROM marked`
      : await sql`
          WITH marked AS (UPDATE responses SET cancel_requested = true WHERE id = ${target.id} AND status IN ('queued', 'in_progress') RETURNING id)
          SELECT pg_notify(${CANCEL_CHANNEL}, ${`response:${target.id}`}) FROM marked`
    return rows.length > 0
  }

  async liveInstances(): Promise<number> {
    const [row] = await (await this.db())`SELECT count(*)::int AS live FROM instances WHERE lease_until >= now()`
    return row!.live as number
  }

  publisher(streamId: string): StreamPublisher {
    return new BatchPublisher(streamId, (batch) => this.track(this.writeUntilWritten(streamId, batch)))
  }

  /**
   * Writes a batch, again and again while the database fails (a terminated connection, an
   * outage): a follower must never see a gap. Given up only once this instance is leaving and the
   * write still fails; followers then fill what is missing from the stored reply.
   */
  private async writeUntilWritten(streamId: string, batch: Batch): Promise<void> {
    for (let delay = BATCH_RETRY_FIRST_MS; ; delay = Math.min(delay * 2, BATCH_RETRY_MAX_MS)) {
      try {
        return await this.writeBatch(streamId, batch)
      } catch (error) {
        if (this.leavingAt !== undefined && performance.now() - this.leavingAt >= LEAVING_WRITE_GRACE_MS) throw error
        this.member?.log.warn('an event batch could not be written; writing it again', { stream_id: streamId, first_seq: batch.firstSeq, error })
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }

  private async writeBatch(streamId: string, { firstSeq, frames, final }: Batch): Promise<void> {
    // The NOTIFY goes out when the INSERT commits: a woken follower finds the frames.
    await (await this.db())`
      WITH written AS (
        INSERT INTO stream_events (stream_id, first_seq, frames, final) VALUES (${streamId}, ${firstSeq}, ${frames}, ${final}) RETURNING 1)
      SELECT pg_notify(${EVENTS_CHANNEL}, ${streamId}) FROM written`
  }

  follow(streamId: string, after: number, ended: StreamEnded, closing?: string): EventSource {
    return {
      subscribe: (_lastEventId, listener) => {
        let set = this.followers.get(streamId)
        if (!set) this.followers.set(streamId, (set = new Set()))
        if (set.size >= MAX_FOLLOWERS) throw tooManyFollowers(MAX_FOLLOWERS)
        const follower = new RemoteFollower(this.sql, streamId, after + 1, ended, listener, this.member?.log, closing, () => {
          set.delete(follower)
          if (set.size === 0) this.followers.delete(streamId)
        })
        set.add(follower)
        follower.wake()
        return () => follower.stop()
      },
    }
  }

  closeFollowers(): void {
    for (const set of this.followers.values()) for (const follower of set) follower.close()
  }

  private wake(streamId: string): void {
    for (const follower of this.followers.get(streamId) ?? []) follower.wake()
  }

  private wakeAll(): void {
    for (const set of this.followers.values()) for (const follower of set) follower.wake()
  }
}
