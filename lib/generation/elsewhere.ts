import { eventText, type EventSource } from '../shared/sse.ts'
import type { ChatStore, Message } from '../store/chat-store.ts'
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
 * When the reply ended without its last event (its owner died), the end is told from its row.
 */
export function eventsElsewhere(cluster: Cluster, store: ChatStore, sessionId: string, reply: Message, after: number): EventSource {
  return cluster.follow(reply.id, after, async (nextSeq) => {
    const now = await store.getMessage(reply.id)
    if (now?.status === 'streaming') return false
    const id = `${reply.id}:${nextSeq}`
    if (now?.status === 'complete' || now?.status === 'cancelled' || now?.status === 'awaiting_approval') {
      const done = { type: 'done', session_id: sessionId, message_id: reply.id, total_tokens: null, prompt_tokens: null, completion_tokens: now.tokens_used ?? null, done_reason: now.status === 'complete' ? null : now.status }
      return eventText(id, JSON.stringify(done))
    }
    const error = now
      ? 'The server generating this reply stopped before it was finished; the text it had saved is kept.'
      : 'The reply is gone (its session was deleted).'
    return eventText(id, JSON.stringify({ type: 'error', session_id: sessionId, message_id: reply.id, error }))
  })
}

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
