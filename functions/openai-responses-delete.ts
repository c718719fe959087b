import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { ownedResponse } from '../lib/openai/responses.ts'

/** DELETE /v1/responses/{id}: forgets a stored response (a conversation's messages stay in it). */
export default defineFunction({
  name: 'openai-responses-delete',
  method: 'DELETE',
  path: '/v1/responses/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const stored = await ownedResponse(app, principal, params.id!)
    if (app.responses.registry.get(stored.id)) {
      throw new HttpProblem(400, 'validation', `The response ${stored.id} is still in progress; cancel it first.`)
    }
    await app.responses.store.delete(stored.id, principal.userId)
    return Response.json({ id: stored.id, object: 'response', deleted: true })
  },
})
