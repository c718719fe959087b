import { defineFunction } from '../lib/handler.ts'
import { noRunningReply } from '../lib/shared/problem.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * POST /v1/sessions/{id}/cancel: stops the session's running reply. Ollama's request is aborted
 * at once; the answer comes when the partial reply is stored.
 */
export default defineFunction({
  name: 'session-cancel',
  method: 'POST',
  path: '/v1/sessions/:id/cancel',
  async handle(_request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    const settled = await app.store.getSession(id, principal.userId) && app.generations.cancel(id)
    if (!settled) throw noRunningReply(id)
    const outcome = await settled
    return Response.json({
      session_id: id,
      message_id: outcome?.messageId ?? null,
      status: outcome?.status ?? 'cancelled',
      content: outcome?.content ?? '',
    })
  },
})
