import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { checkedSettings, updateSessionBodySchema } from '../lib/http/session-input.ts'
import { parseInput, sessionIdFrom } from '../lib/http/validate.ts'
import { knowledgeFiles } from '../lib/documents/knowledge.ts'
import type { Config } from '../lib/shared/config.ts'

const schemas = new WeakMap<Config, ReturnType<typeof updateSessionBodySchema>>()

/**
 * PATCH /v1/sessions/{id}: renames the session, changes what its turns use (model, options,
 * think, the files and collections they answer from), and sets or removes its system prompt, which applies from its next turn.
 */
export default defineFunction({
  name: 'session-update',
  method: 'PATCH',
  path: '/v1/sessions/:id',
  async handle(request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    let schema = schemas.get(app.config)
    if (!schema) schemas.set(app.config, (schema = updateSessionBodySchema(app.config)))
    const body = parseInput(schema, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const current = await app.store.getSession(id, principal.userId)
    if (!current) throw noSuchSession(id)
    // The model the chat will use must be there, and able to think when it is to.
    if (body.model !== undefined || (body.think !== undefined && body.think !== null)) {
      await checkedSettings(app, body.model === undefined ? current.model : body.model, body.think === undefined ? current.think : body.think)
    }
    // Files and collections it answers from must be the caller's (another user's are as missing ones).
    await knowledgeFiles(app.database.documents, principal.userId, body.files ?? [], body.collections ?? [], body)
    const session = await app.store.updateSession(id, principal.userId, body)
    if (!session) throw noSuchSession(id)
    return Response.json(session)
  },
})
