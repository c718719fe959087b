import { defineFunction } from '../lib/handler.ts'
import { canonicalModelName, isModelAllowed } from '../lib/shared/models.ts'
import { openAIModel } from '../lib/openai/wire.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/**
 * GET /v1/models/{id}: one model in OpenAI's shape (the SDKs' `models.retrieve`), with what it can
 * do (Ollama's `/api/show` capabilities, cached; null when Ollama reports none); ids may hold a
 * `/` (`namespace/model:tag`).
 */
export default defineFunction({
  name: 'models-get',
  method: 'GET',
  path: '/v1/models/:id+',
  errors: 'openai',
  async handle(_request, { app, params }) {
    const id = decodeURIComponent(params.id!)
    const wanted = canonicalModelName(id)
    const model = isModelAllowed(id, app.config.allowedModels) ? (await app.ollama.listModels()).find((listed) => canonicalModelName(listed.name) === wanted) : undefined
    if (!model) throw new HttpProblem(404, 'model_not_found', `The model '${id}' does not exist or you do not have access to it.`, { param: 'model' })
    return Response.json({ ...openAIModel(model), capabilities: await app.ollama.capabilities(model.name) })
  },
})
