import type { AppContext } from '../lib/context.ts'
import { eventAfter, eventsElsewhere } from '../lib/generation/elsewhere.ts'
import { storedEvents } from '../lib/generation/replay.ts'
import { defineFunction } from '../lib/handler.ts'
import { noRunningReply } from '../lib/shared/problem.ts'
import { followEvents, lastEventId } from '../lib/shared/sse.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * GET /v1/sessions/{id}/stream: re-attaches to the session's running reply. The events after
 * `Last-Event-ID` (all of them without it) come first, then the live ones. A reply running on
 * another instance (several instances on PostgreSQL) is followed through the database; one that
 * ended meanwhile is answered from the store to a client whose Last-Event-ID names it.
 */
export default defineFunction({
  name: 'session-stream',
  method: 'GET',
  path: '/v1/sessions/:id/stream',
  async handle(request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    if (!await app.store.getSession(id, principal.userId)) throw noRunningReply(id)
    const { sseHeartbeatMs } = app.config
    const generation = app.generations.get(id)
    if (generation) return followEvents(generation, lastEventId(request), sseHeartbeatMs)
    const { cluster } = app.database
    if (!cluster) return endedReply(app, id, lastEventId(request))
    const reply = await app.store.streamingReply(id)
    if (!reply) return endedReply(app, id, lastEventId(request))
    // A reply resumed after approvals (README "Tools") is followed from its resumption: what it
    // sent before it paused (its stored event count) ended with that pause.
    const resumedAfter = (await app.store.getReply(reply.id))?.event_count ?? 0
    return followEvents(eventsElsewhere(cluster, app.store, id, reply, Math.max(resumedAfter, eventAfter(reply.id, lastEventId(request)))), null, sseHeartbeatMs)
  },
})

/**
 * A client that followed a reply of this session (its Last-Event-ID says which) and comes back
 * after the reply ended (a resumed reply can end before its follower arrives) gets the rest as
 * stored: its text and its end. Anything else: 404, no reply is running.
 */
async function endedReply(app: AppContext, sessionId: string, lastId: string | null): Promise<Response> {
  const replyId = (lastId ?? '').match(/^([0-9a-f-]{36}):\d{1,9}$/)?.[1]
  const reply = replyId && (await app.store.getSessionMessage(sessionId, replyId)) ? await app.store.getReply(replyId) : undefined
  if (!reply || reply.status === 'streaming' || reply.status === 'awaiting_approval') throw noRunningReply(sessionId)
  return followEvents(storedEvents(sessionId, reply, {}, eventAfter(reply.id, lastId)), null, app.config.sseHeartbeatMs)
}
