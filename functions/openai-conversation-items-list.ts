import * as v from 'valibot'
import { itemOf, ownedConversation, ownedItem } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { openAIList } from '../lib/openai/wire.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.looseObject({
  limit: queryInteger(1, 100, 20),
  order: v.optional(v.picklist(['asc', 'desc'], 'must be asc or desc'), 'desc'),
  after: v.optional(v.string()),
})

/** GET /v1/conversations/{id}/items?limit&order&after: the conversation's messages as items (newest first by default). */
export default defineFunction({
  name: 'openai-conversation-items-list',
  method: 'GET',
  path: '/v1/conversations/:id/items',
  errors: 'openai',
  async handle(_request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const { sessionId } = await ownedConversation(app, principal, params.id!)
    const after = query.after ? await ownedItem(app, sessionId, query.after) : undefined
    const cursor = after ? ([after.created_at, after.seq] as [string, number]) : null
    const page = await app.store.listMessages(sessionId, query.limit, cursor, query.order)
    return Response.json(openAIList(page.items.map(itemOf), page.next !== null))
  },
})
