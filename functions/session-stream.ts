import { defineFunction } from '../lib/handler.ts'
import { noRunningReply } from '../lib/shared/problem.ts'
import { followEvents, lastEventId } from '../lib/shared/sse.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * GET /v1/sessions/{id}/stream: re-attaches to the session's running reply. The events after
 * `Last-Event-ID` (all of them without it) come first, then the live ones.
 */
export default defineFunction({
  name: 'session-stream',
  method: 'GET',
  path: '/v1/sessions/:id/stream',
  async handle(request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    const generation = await app.store.getSession(id, principal.userId) && app.generations.get(id)
    if (!generation) throw noRunningReply(id)
    return followEvents(generation, lastEventId(request), app.config.sseHeartbeatMs)
  },
})
