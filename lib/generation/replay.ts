import type { AppContext } from '../context.ts'
import { claimIdempotencyKey, fingerprintOf, idempotencyKeyOf } from '../http/idempotency.ts'
import { eventText, followEvents, type EventSource } from '../shared/sse.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { IdempotentOutcome, StoredReply } from '../store/chat-store.ts'
import { jsonAnswer, type ChatTurn } from './chat-turn.ts'
import { eventsElsewhere, NO_FRAMES, untilEnded } from './elsewhere.ts'
import type { Generation, GenerationOutcome } from './generation.ts'

/**
 * A chat route (POST /v1/chat, a regeneration) run at most once per Idempotency-Key (README
 * "Safe retries"). Without a key, `run` just runs. With one: a retry of the same request gets the
 * reply the first one made (followed from its start while it runs, else as stored); a request
 * that failed before its reply began (a 4xx, Ollama down) is forgotten, so its retry runs again.
 */
export async function chatOnce(
  app: AppContext,
  request: Request,
  ownerId: string,
  route: string,
  body: unknown,
  stream: boolean,
  run: (onStarted: ChatTurn['onStarted']) => Promise<Response>,
): Promise<Response> {
  const key = idempotencyKeyOf(request)
  if (key === undefined) return run(undefined)
  const earlier = await claimIdempotencyKey(app, ownerId, key, fingerprintOf(route, body))
  if (earlier) return replayReply(app, earlier, stream)
  let started = false
  const onStarted = async (generation: Generation) => {
    started = true
    try {
      await app.store.recordIdempotentOutcome(ownerId, key, { sessionId: generation.sessionId, messageId: generation.messageId, answer: JSON.stringify(generation.context) })
    } catch (error) {
      // The reply runs all the same; a retry of this request would run again.
      app.log.warn('an idempotency key could not be recorded', { error })
    }
  }
  try {
    return await run(onStarted)
  } catch (error) {
    if (!started) await app.store.releaseIdempotencyKey(ownerId, key)
    throw error
  }
}

/** The reply a first request made, answered to its retry as the first was answered. */
async function replayReply(app: AppContext, earlier: IdempotentOutcome, stream: boolean): Promise<Response> {
  const sessionId = earlier.sessionId!
  const messageId = earlier.messageId!
  const { sseHeartbeatMs } = app.config
  const running = app.generations.get(sessionId)
  if (running?.messageId === messageId) {
    return stream ? followEvents(running, null, sseHeartbeatMs) : jsonAnswer(sessionId, (await app.store.getMessage(messageId))?.model ?? '', await running.outcome, running.context)
  }
  let reply = await app.store.getReply(messageId)
  const { cluster } = app.database
  if (reply?.status === 'streaming' && cluster) {
    // Running on another instance: followed through the database.
    if (stream) return followEvents(eventsElsewhere(cluster, app.store, sessionId, reply, 0), null, sseHeartbeatMs)
    await untilEnded(eventsElsewhere(cluster, app.store, sessionId, reply, NO_FRAMES))
    reply = await app.store.getReply(messageId)
  }
  if (!reply) throw new HttpProblem(404, 'not_found', 'The reply this Idempotency-Key made is gone (its session was deleted).')
  const context = earlier.answer ? (JSON.parse(earlier.answer) as Record<string, unknown>) : {}
  if (stream) return followEvents(storedEvents(sessionId, reply, context), null, sseHeartbeatMs)
  return jsonAnswer(sessionId, reply.model ?? '', outcomeOf(reply), context)
}

function outcomeOf(reply: StoredReply): GenerationOutcome {
  const status = reply.status === 'streaming' ? 'interrupted' : reply.status
  return {
    status,
    messageId: reply.id,
    createdAt: reply.created_at,
    content: reply.content,
    tokensUsed: reply.tokens_used ?? null,
    promptTokens: reply.prompt_tokens,
    doneReason: reply.done_reason ?? (status === 'cancelled' ? 'cancelled' : null),
    error: status === 'error' || status === 'interrupted' ? `The reply ended ${status === 'error' ? 'with an error' : 'before it was finished'}; the text it had is kept.` : null,
  }
}

/**
 * A stored reply's events, as its first request got them: `start`, its text as one `token` event
 * with the id of the last token event sent, and the final event with its own id (the reply's
 * event count is stored with its end; one a crash ended numbers its events anew); those after
 * event `after` only.
 */
export function storedEvents(sessionId: string, reply: StoredReply, context: Record<string, unknown>, after = 0): EventSource {
  const outcome = outcomeOf(reply)
  const last = Math.max(reply.event_count ?? 0, reply.content ? 3 : 2)
  const id = (n: number) => `${reply.id}:${n}`
  const encoder = new TextEncoder()
  const frames = [eventText(id(1), JSON.stringify({ type: 'start', session_id: sessionId, message_id: reply.id, user_message_id: reply.parent_id, model: reply.model, context }))]
  if (reply.content) frames.push(eventText(id(last - 1), JSON.stringify({ type: 'token', content: reply.content, session_id: sessionId })))
  const ended = outcome.status === 'complete' || outcome.status === 'cancelled'
    ? {
        type: 'done',
        session_id: sessionId,
        message_id: reply.id,
        total_tokens: outcome.promptTokens !== null && outcome.tokensUsed !== null ? outcome.promptTokens + outcome.tokensUsed : null,
        prompt_tokens: outcome.promptTokens,
        completion_tokens: outcome.tokensUsed,
        done_reason: outcome.doneReason,
      }
    : { type: 'error', session_id: sessionId, message_id: reply.id, error: outcome.error }
  frames.push(eventText(id(last), JSON.stringify(ended)))
  // Those after `after` only (each frame's id is its second field, after `id: <reply>:`).
  const sent = frames.filter((frame) => Number(/^id: [^:]+:(\d+)/.exec(frame)?.[1] ?? 0) > after)
  return {
    subscribe(_lastEventId, listener) {
      for (const frame of sent) listener(encoder.encode(frame))
      listener(null)
      return () => {}
    },
  }
}
