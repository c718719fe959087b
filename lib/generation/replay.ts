import type { AppContext } from '../context.ts'
import { claimIdempotencyKey, fingerprintOf, idempotencyKeyOf } from '../retries/idempotency.ts'
import { followEvents } from '../shared/sse.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { IdempotentOutcome } from '../store/chat-store.ts'
import { jsonAnswer, type ChatTurn } from './chat-turn.ts'
import { eventsElsewhere, NO_FRAMES, untilEnded } from './elsewhere.ts'
import type { Generation } from './generation.ts'
import { outcomeOf, storedEvents } from './stored-reply.ts'

/**
 * A chat route (POST /v1/chat, a regeneration) run at most once per Idempotency-Key (docs/api.md,
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
    return stream ? followEvents(running, null, sseHeartbeatMs) : jsonAnswer(sessionId, (await app.store.getMessage(messageId))?.model ?? '', await running.outcome, running.context, running.sources)
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
  return jsonAnswer(sessionId, reply.model ?? '', outcomeOf(reply), context, reply.sources)
}
