import { eventsElsewhere, NO_FRAMES, untilEnded } from '../lib/generation/elsewhere.ts'
import { defineFunction } from '../lib/handler.ts'
import { noRunningReply } from '../lib/shared/problem.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * POST /v1/sessions/{id}/cancel: stops the session's running reply. Ollama's request is aborted
 * at once (by its owner, when another instance runs it); the answer comes when the partial reply
 * is stored.
 */
export default defineFunction({
  name: 'session-cancel',
  method: 'POST',
  path: '/v1/sessions/:id/cancel',
  async handle(_request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    if (!await app.store.getSession(id, principal.userId)) throw noRunningReply(id)
    const settled = app.generations.cancel(id)
    if (settled) {
      const outcome = await settled
      return Response.json({
        session_id: id,
        message_id: outcome?.messageId ?? null,
        status: outcome?.status ?? 'cancelled',
        content: outcome?.content ?? '',
      })
    }
    const { cluster } = app.database
    const reply = cluster && await app.store.streamingReply(id)
    if (!reply || !await cluster.requestCancel({ kind: 'reply', sessionId: id })) throw noRunningReply(id)
    // In the trace: this cancel was passed to the instance that runs the reply.
    app.tracer.current()?.setAttributes({ 'chat_ollama.reply.id': reply.id, 'chat_ollama.reply.elsewhere': true })
    await untilEnded(eventsElsewhere(cluster, app.store, id, reply, NO_FRAMES))
    const stored = await app.store.getMessage(reply.id)
    return Response.json({ session_id: id, message_id: reply.id, status: stored?.status ?? 'cancelled', content: stored?.content ?? '' })
  },
})
