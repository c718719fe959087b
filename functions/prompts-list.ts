import { defineFunction } from '../lib/handler.ts'
import { MAX_SAVED_PROMPTS } from '../lib/http/prompt-input.ts'

/** GET /v1/prompts: the caller's saved prompts by title, all of them (at most MAX_SAVED_PROMPTS). */
export default defineFunction({
  name: 'prompts-list',
  method: 'GET',
  path: '/v1/prompts',
  async handle(_request, { app, principal }) {
    return Response.json({ prompts: await app.database.prompts.listPrompts(principal.userId, MAX_SAVED_PROMPTS) })
  },
})
