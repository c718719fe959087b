import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { PromptChangeBody, promptIdFrom } from '../lib/http/prompt-input.ts'
import { parseInput } from '../lib/http/validate.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** PATCH /v1/prompts/{id}: changes a saved prompt's title or text; another user's is 404 like a missing one. */
export default defineFunction({
  name: 'prompt-update',
  method: 'PATCH',
  path: '/v1/prompts/:id',
  async handle(request, { app, params, principal }) {
    const id = promptIdFrom(params)
    const change = parseInput(PromptChangeBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const prompt = await app.database.prompts.updatePrompt(id, principal.userId, change)
    if (!prompt) throw new HttpProblem(404, 'not_found', `No prompt has the id ${id}.`)
    return Response.json(prompt)
  },
})
