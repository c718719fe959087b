import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { MAX_SAVED_PROMPTS, NewPromptBody } from '../lib/http/prompt-input.ts'
import { parseInput } from '../lib/http/validate.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** POST /v1/prompts: saves a prompt of the caller's; 201 with it and its Location. */
export default defineFunction({
  name: 'prompts-create',
  method: 'POST',
  path: '/v1/prompts',
  async handle(request, { app, principal }) {
    const body = parseInput(NewPromptBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const prompt = await app.database.prompts.createPrompt(principal.userId, body, MAX_SAVED_PROMPTS)
    if (prompt === 'full') throw new HttpProblem(409, 'conflict', `You have ${MAX_SAVED_PROMPTS} saved prompts, the most one user keeps: delete one first.`)
    return Response.json(prompt, { status: 201, headers: { location: `/v1/prompts/${prompt.id}` } })
  },
})
