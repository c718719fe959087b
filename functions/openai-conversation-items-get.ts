import { itemOf, ownedConversation, ownedItem } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'

/** GET /v1/conversations/{id}/items/{item_id}: one message of the conversation. */
export default defineFunction({
  name: 'openai-conversation-items-get',
  method: 'GET',
  path: '/v1/conversations/:id/items/:item_id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const { sessionId } = await ownedConversation(app, principal, params.id!)
    return Response.json(itemOf(await ownedItem(app, sessionId, params.item_id!)))
  },
})
