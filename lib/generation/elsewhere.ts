import { eventText, type EventSource } from '../shared/sse.ts'
import type { Message } from '../store/chat-store.ts'
import type { ReplyStore } from '../store/reply-store.ts'
import { storedRest } from './stored-reply.ts'
import type { Cluster } from '../store/cluster.ts'

/**
 * A session's reply running on another instance (several instances on PostgreSQL): its events
 * as that instance sends them, through the database, and its cancel.
 */

/** The n of `<reply id>:<n>`; 0 (from the start) for an id of anything else, as ReplyEventLog reads it. */
export function eventAfter(replyId: string, lastEventId: string | null): number {
  const prefix = `${replyId}:`
  if (!lastEventId?.startsWith(prefix)) return 0
  const n = lastEventId.slice(prefix.length)
  return /^\d{1,9}$/.test(n) ? Number(n) : 0
}

/**
 * The events of `reply` after event `after`, read from the database and followed live. A `after`
 * beyond what is stored yet means "after that event" all the same (its owner sent it already).
 * When the frames stop short of the end and the reply has ended in the store (its owner died, or
 * its last batch is late), the rest comes from the store: the text the client lacks and the
 * reply's stored end, with the ids its owner gave them.
 */
export function eventsElsewhere(cluster: Cluster, store: ReplyStore, sessionId: string, reply: Message, after: number): EventSource {
  return cluster.follow(reply.id, after, async (nextSeq, sentText) => {
    const now = await store.getReply(reply.id)
    if (now?.status === 'streaming') return false
    if (!now) return [eventText(`${reply.id}:${nextSeq}`, JSON.stringify({ type: 'error', session_id: sessionId, message_id: reply.id, error: 'The reply is gone (its session was deleted).' }))]
    return storedRest(sessionId, now, nextSeq - 1, after === NO_FRAMES ? null : await sentText())
  }, reconnectEvent(sessionId, reply.id))
}

/**
 * Sent to a follower when this instance stops before the reply it follows has ended (it runs on
 * another instance): no id, so that the client reconnects with the Last-Event-ID it has, and a
 * `retry` of one second for an EventSource.
 */
export const reconnectEvent = (sessionId: string, messageId: string): string =>
  `retry: 1000\ndata: ${JSON.stringify({ type: 'reconnect', session_id: sessionId, message_id: messageId, reason: 'This server is shutting down; reconnect with the Last-Event-ID you have to go on following the reply.' })}\n\n`

/** Resolves once `source` has ended, its frames unread. */
export function untilEnded(source: EventSource): Promise<void> {
  return new Promise((resolve) => {
    source.subscribe(null, (frame) => {
      if (frame === null) resolve()
    })
  })
}

/** Skips every frame: for waiting on the end of a stream only. */
export const NO_FRAMES = 999_999_999
