import { eventAfter, eventsElsewhere } from '../lib/generation/elsewhere.ts'
import { defineFunction } from '../lib/handler.ts'
import { noRunningReply } from '../lib/shared/problem.ts'
import { followEvents, lastEventId } from '../lib/shared/sse.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * GET /v1/sessions/{id}/stream: re-attaches to the session's running reply. The events after
 * `Last-Event-ID` (all of them without it) come first, then the live ones. A reply running on
 * another instance (several instances on PostgreSQL) is followed through the database.
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
    const reply = cluster && await app.store.streamingReply(id)
    if (!reply) throw noRunningReply(id)
    return followEvents(eventsElsewhere(cluster, app.store, id, reply, eventAfter(reply.id, lastEventId(request))), null, sseHeartbeatMs)
  },
})
