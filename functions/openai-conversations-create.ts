import * as v from 'valibot'
import { readJsonBody } from '../lib/http/body.ts'
import { conversationObject, itemsAsMessages, Metadata, NewItems } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput } from '../lib/http/validate.ts'

const Body = v.looseObject({ items: v.optional(v.nullable(NewItems)), metadata: v.optional(v.nullable(Metadata)) })

/** POST /v1/conversations: a new conversation (a session, on the page too), with initial items. */
export default defineFunction({
  name: 'openai-conversations-create',
  method: 'POST',
  path: '/v1/conversations',
  errors: 'openai',
  async handle(request, { app, principal }) {
    const body = parseInput(Body, (await readJsonBody(request, app.config.maxBodyBytes)) ?? {}, 'request body')
    const messages = itemsAsMessages(body.items ?? [], app.config)
    const session = await app.store.createSession({ ownerId: principal.userId })
    if (body.metadata) await app.store.setSessionMetadata(session.id, body.metadata)
    if (messages.length) await app.store.appendMessages(session.id, principal.userId, messages)
    return Response.json(await conversationObject(app, session.id, session.created_at))
  },
})
