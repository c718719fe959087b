import { ownedConversation } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** DELETE /v1/conversations/{id}: the conversation and its items (the session and its messages). */
export default defineFunction({
  name: 'openai-conversations-delete',
  method: 'DELETE',
  path: '/v1/conversations/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const { sessionId } = await ownedConversation(app, principal, params.id!)
    // 400, not 409: OpenAI's SDKs retry a 409 by themselves.
    const deleted = app.generations.isBusy(sessionId) ? 'busy' : await app.store.deleteSession(sessionId, principal.userId)
    if (deleted === 'busy') throw new HttpProblem(400, 'conflict', 'A reply is being generated in this conversation; cancel it first.')
    return Response.json({ id: params.id, object: 'conversation.deleted', deleted: true })
  },
})
