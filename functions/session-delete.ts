import { defineFunction } from '../lib/handler.ts'
import { HttpProblem, noSuchSession } from '../lib/shared/problem.ts'
import { sessionIdFrom } from '../lib/http/validate.ts'

/** DELETE /v1/sessions/{id}: the session and its messages; refused while a reply is running. */
export default defineFunction({
  name: 'session-delete',
  method: 'DELETE',
  path: '/v1/sessions/:id',
  async handle(_request, { app, params, principal }) {
    const id = sessionIdFrom(params)
    // Ownership first: someone else's session answers 404 like a missing one, never 409.
    if (!await app.store.getSession(id, principal.userId)) throw noSuchSession(id)
    // A chat being set up here has no streaming row yet; one running anywhere has (the store refuses).
    const deleted = app.generations.isBusy(id) ? 'busy' : await app.store.deleteSession(id, principal.userId)
    if (deleted === 'busy') {
      throw new HttpProblem(409, 'conflict', 'A reply is being generated in this session; cancel it or wait for it to finish first.')
    }
    if (deleted === 'missing') throw noSuchSession(id)
    return new Response(null, { status: 204 })
  },
})
