import { conversationObject, ownedConversation, ownedItem } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** DELETE /v1/conversations/{id}/items/{item_id}: removes a message (not one being generated); answers the conversation. */
export default defineFunction({
  name: 'openai-conversation-items-delete',
  method: 'DELETE',
  path: '/v1/conversations/:id/items/:item_id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const { sessionId, session } = await ownedConversation(app, principal, params.id!)
    const message = await ownedItem(app, sessionId, params.item_id!)
    if (!await app.store.deleteMessage(sessionId, message.id)) throw new HttpProblem(400, 'conflict', 'That item is being generated; cancel the response first.')
    return Response.json(await conversationObject(app, sessionId, session.created_at))
  },
})
