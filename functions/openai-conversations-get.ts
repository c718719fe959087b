import { conversationObject, ownedConversation } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'

/** GET /v1/conversations/{id}: the conversation (any of the user's sessions, by its conv_ id). */
export default defineFunction({
  name: 'openai-conversations-get',
  method: 'GET',
  path: '/v1/conversations/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const { sessionId, session } = await ownedConversation(app, principal, params.id!)
    return Response.json(await conversationObject(app, sessionId, session.created_at))
  },
})
