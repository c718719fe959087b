import type { AppContext } from '../lib/context.ts'
import { eventAfter, eventsElsewhere } from '../lib/generation/elsewhere.ts'
import { storedEvents } from '../lib/generation/stored-reply.ts'
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
    // A reply resumed after approvals (docs/tools.md) is followed from its resumption: what it
    // sent before it paused (its stored event count) ended with that pause.
    const resumedAfter = (await app.store.getReply(reply.id))?.event_count ?? 0
    // In the trace: this reply is followed through the database, from the instance that runs it.
    app.tracer.current()?.setAttributes({ 'chat_ollama.reply.id': reply.id, 'chat_ollama.reply.elsewhere': true })
    return followEvents(eventsElsewhere(cluster, app.store, id, reply, Math.max(resumedAfter, eventAfter(reply.id, lastEventId(request)))), null, sseHeartbeatMs)
  },
})

/**
 * A client that followed a reply of this session (its Last-Event-ID says which) and comes back
 * after the reply ended gets what follows that id, with the ids the reply had, then the stream
 * closes: from the reply's events while they are kept (here, or another instance's in the
 * database), else from the store (its text, or its end alone when the client's text is not
 * known). With nothing left to send, 204 (an EventSource then stops reconnecting). Without such an
 * id: 404, no reply is running.
 */
async function endedReply(app: AppContext, sessionId: string, lastId: string | null): Promise<Response> {
  const replyId = (lastId ?? '').match(/^([0-9a-f-]{36}):\d{1,9}$/)?.[1]
  if (!replyId) throw noRunningReply(sessionId)
  const after = eventAfter(replyId, lastId)
  const { sseHeartbeatMs } = app.config
  const kept = app.generations.endedEvents(sessionId)
  if (kept?.replyId === replyId) return after >= kept.eventCount ? NOTHING_LEFT() : followEvents(kept, lastId, sseHeartbeatMs)
  const reply = (await app.store.getSessionMessage(sessionId, replyId)) ? await app.store.getReply(replyId) : undefined
  if (!reply || reply.status === 'streaming' || reply.status === 'awaiting_approval') throw noRunningReply(sessionId)
  if (after >= (reply.event_count ?? Infinity)) return NOTHING_LEFT()
  const { cluster } = app.database
  return followEvents(cluster ? eventsElsewhere(cluster, app.store, sessionId, reply, after) : storedEvents(sessionId, reply, {}, after), null, sseHeartbeatMs)
}

const NOTHING_LEFT = () => new Response(null, { status: 204 })
