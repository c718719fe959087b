import * as v from 'valibot'
import { readJsonBody } from '../lib/http/body.ts'
import { itemOf, itemsAsMessages, NewItems, ownedConversation } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { openAIList } from '../lib/openai/wire.ts'
import { parseInput } from '../lib/http/validate.ts'

const Body = v.looseObject({ items: v.pipe(NewItems, v.minLength(1, 'must have at least one item')) })

/** POST /v1/conversations/{id}/items `{items}`: appends messages to the conversation. */
export default defineFunction({
  name: 'openai-conversation-items-create',
  method: 'POST',
  path: '/v1/conversations/:id/items',
  errors: 'openai',
  async handle(request, { app, params, principal }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const { sessionId } = await ownedConversation(app, principal, params.id!)
    const ids = await app.store.appendMessages(sessionId, principal.userId, itemsAsMessages(body.items, app.config))
    const items = []
    for (const id of ids) items.push(itemOf((await app.store.getSessionMessage(sessionId, id))!))
    return Response.json(openAIList(items, false))
  },
})
