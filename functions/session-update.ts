import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { RenameSessionBody } from '../lib/http/session-input.ts'
import { parseInput, sessionIdFrom } from '../lib/http/validate.ts'

/** PATCH /v1/sessions/{id}: renames the session. */
export default defineFunction({
  name: 'session-update',
  method: 'PATCH',
  path: '/v1/sessions/:id',
  async handle(request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    const body = parseInput(RenameSessionBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const session = await app.store.renameSession(id, principal.userId, body.title)
    if (!session) throw noSuchSession(id)
    return Response.json(session)
  },
})
