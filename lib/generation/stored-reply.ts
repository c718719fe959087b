import type { StoredReply } from '../store/chat-store.ts'
import { eventText, type EventSource } from '../shared/sse.ts'
import { doneEventOf, type GenerationOutcome } from './generation.ts'
import { NOTHING_SENT, type SentText } from '../store/cluster.ts'

/**
 * A reply that has ended, told from the store: its outcome, and its events as its owner sent
 * them (for a retry with the same Idempotency-Key, a client that comes back after the end, a
 * follower on another instance whose frames stop short).
 */

export function outcomeOf(reply: StoredReply): GenerationOutcome {
  const status = reply.status === 'streaming' ? 'interrupted' : reply.status
  return {
    status,
    messageId: reply.id,
    createdAt: reply.created_at,
    content: reply.content,
    thinking: reply.thinking ?? '',
    thinkingMs: reply.thinking_ms ?? null,
    tokensUsed: reply.tokens_used ?? null,
    promptTokens: reply.prompt_tokens,
    tokensPerSecond: reply.tokens_per_second ?? null,
    doneReason: reply.done_reason ?? (status === 'cancelled' || status === 'awaiting_approval' ? status : null),
    error: status === 'error' || status === 'interrupted' ? `The reply ended ${status === 'error' ? 'with an error' : 'before it was finished'}; the text it had is kept.` : null,
  }
}

/**
 * A stored reply's events, as its first request got them: `start`, its `sources` if any, its text as one `token` event
 * with the id of the last token event sent, and the final event with its own id (the reply's
 * event count is stored with its end; one a crash ended numbers its events anew); those after
 * event `after` only. A client that had events of it (`after` > 0) but whose text is not known
 * here gets its end alone.
 */
export function storedEvents(sessionId: string, reply: StoredReply, context: Record<string, unknown>, after = 0): EventSource {
  // Its sources came second, as the live reply sent them.
  const sources = reply.sources?.length ? [eventText(`${reply.id}:2`, JSON.stringify({ type: 'sources', session_id: sessionId, message_id: reply.id, sources: reply.sources }))] : []
  const frames = after === 0
    ? [eventText(`${reply.id}:1`, JSON.stringify({ type: 'start', session_id: sessionId, message_id: reply.id, user_message_id: reply.parent_id, model: reply.model, context })), ...sources, ...storedRest(sessionId, reply, 1 + sources.length, NOTHING_SENT)]
    : after < (reply.event_count ?? Infinity) ? storedRest(sessionId, reply, after, null) : []
  const encoder = new TextEncoder()
  return {
    subscribe(_lastEventId, listener) {
      for (const frame of frames) listener(encoder.encode(frame))
      listener(null)
      return () => {}
    },
  }
}

/**
 * The rest of a stored (ended) reply for a client that has its events up to `lastSent` and, of
 * its text and reasoning, `sent` (null: not known): the reasoning it lacks as one `thinking`
 * event and the text as one `token` event, numbered up to the last one before the end, then its
 * end (`done`, or `error`) with the reply's own last id. A reply whose event count is not stored
 * (a crash ended it) goes on from `lastSent`.
 */
export function storedRest(sessionId: string, reply: StoredReply, lastSent: number, sent: SentText | null): string[] {
  const lacking = (stored: string, had: string | undefined) => (had !== undefined && stored.startsWith(had) ? stored.slice(had.length) : '')
  const rest = [
    { type: 'thinking', content: lacking(reply.thinking ?? '', sent?.thinking) },
    { type: 'token', content: lacking(reply.content, sent?.text) },
  ].filter((event) => event.content)
  const least = lastSent + rest.length + 1
  const last = reply.event_count !== null && reply.event_count >= least ? reply.event_count : least
  const frames = rest.map((event, index) => eventText(`${reply.id}:${last - rest.length + index}`, JSON.stringify({ ...event, session_id: sessionId })))
  frames.push(eventText(`${reply.id}:${last}`, JSON.stringify(endOf(sessionId, reply))))
  return frames
}

/** A stored reply's last event, as its owner sent it. */
function endOf(sessionId: string, reply: StoredReply): Record<string, unknown> {
  const outcome = outcomeOf(reply)
  if (outcome.status === 'complete' || outcome.status === 'cancelled' || outcome.status === 'awaiting_approval') {
    return doneEventOf(sessionId, outcome)
  }
  return { type: 'error', session_id: sessionId, message_id: reply.id, error: outcome.error }
}
