import { defineFunction } from '../lib/handler.ts'
import { newShareToken, shareTokenHash, sharedMessagesOf } from '../lib/conversations/share.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { shareLinksOn } from '../lib/http/share-links.ts'

/**
 * POST /v1/sessions/{id}/shares: a read-only snapshot of the chat as it is now at a new,
 * unguessable link; 201 with the link's `url` (answered this once: only its hash is kept).
 */
export default defineFunction({
  name: 'share-create',
  method: 'POST',
  path: '/v1/sessions/:id/shares',
  async handle(_request, { app, params, principal }) {
    shareLinksOn(app.config)
    const sessionId = sessionIdFrom(params)
    const session = await app.store.getSession(sessionId, principal.userId)
    if (!session) throw noSuchSession(sessionId)
    const token = newShareToken()
    const messages = await sharedMessagesOf(app.store, sessionId)
    const share = await app.database.shares.createShare({ ownerId: principal.userId, sessionId, tokenHash: shareTokenHash(token), title: session.title, messages })
    return Response.json({ ...share, url: `/s/${token}` }, { status: 201, headers: { location: `/s/${token}` } })
  },
})
