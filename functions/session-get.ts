import { defineFunction } from '../lib/handler.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/**
 * GET /v1/sessions/{id}: the session with its message count, and where the history its model is
 * sent begins (`context_cut`, null while everything is sent).
 */
export default defineFunction({
  name: 'session-get',
  method: 'GET',
  path: '/v1/sessions/:id',
  async handle(_request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    const session = await app.store.getSession(id, principal.userId)
    if (!session) throw noSuchSession(id)
    const cut = await app.store.contextCut(id)
    return Response.json({ ...session, context_cut: cut?.messageId ? { first_sent_message_id: cut.messageId, summarized: cut.summary !== null } : null })
  },
})
