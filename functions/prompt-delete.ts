import { defineFunction } from '../lib/handler.ts'
import { promptIdFrom } from '../lib/http/prompt-input.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** DELETE /v1/prompts/{id}: 204; another user's prompt is 404 like a missing one. */
export default defineFunction({
  name: 'prompt-delete',
  method: 'DELETE',
  path: '/v1/prompts/:id',
  async handle(_request, { app, params, principal }) {
    const id = promptIdFrom(params)
    if (!(await app.database.prompts.deletePrompt(id, principal.userId))) throw new HttpProblem(404, 'not_found', `No prompt has the id ${id}.`)
    return new Response(null, { status: 204 })
  },
})
