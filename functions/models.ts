import { defineFunction } from '../lib/handler.ts'
import { isModelAllowed } from '../lib/models.ts'

/** GET /v1/models: the models the Ollama hosts have (their union, with the hosts of each), limited to ALLOWED_MODELS. */
export default defineFunction({
  name: 'models',
  method: 'GET',
  path: '/v1/models',
  async handle(_request, { app }) {
    const models = await app.ollama.listModels()
    return Response.json({
      models: models
        .filter((model) => isModelAllowed(model.name, app.config.allowedModels))
        .map(({ name, size, modified_at, details, hosts }) => ({ name, size, modified_at, details, hosts })),
    })
  },
})
