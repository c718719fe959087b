import * as v from 'valibot'
import { readJsonBody } from '../lib/http/body.ts'
import { conversationObject, Metadata, ownedConversation } from '../lib/openai/conversations.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput } from '../lib/http/validate.ts'

const Body = v.looseObject({ metadata: Metadata })

/** POST /v1/conversations/{id} `{metadata}`: replaces the conversation's metadata. */
export default defineFunction({
  name: 'openai-conversations-update',
  method: 'POST',
  path: '/v1/conversations/:id',
  errors: 'openai',
  async handle(request, { app, params, principal }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const { sessionId, session } = await ownedConversation(app, principal, params.id!)
    await app.store.setSessionMetadata(sessionId, body.metadata)
    return Response.json(await conversationObject(app, sessionId, session.created_at))
  },
})
