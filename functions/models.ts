import { defineFunction } from '../lib/handler.ts'
import { isModelAllowed } from '../lib/shared/models.ts'
import { openAIModel } from '../lib/openai/wire.ts'

/** GET /v1/models: the models the Ollama hosts have (their union, with the hosts of each), limited to ALLOWED_MODELS. */
export default defineFunction({
  name: 'models',
  method: 'GET',
  path: '/v1/models',
  // OpenAI's SDKs list models here: their error shape, like the other OpenAI routes.
  errors: 'openai',
  async handle(_request, { app }) {
    const models = (await app.ollama.listModels()).filter((model) => isModelAllowed(model.name, app.config.allowedModels))
    return Response.json({
      models: models.map(({ name, size, modified_at, details, hosts }) => ({ name, size, modified_at, details, hosts })),
      // What a chat that names no model uses (DEFAULT_MODEL), for pickers that say so.
      default_model: app.config.defaultModel,
      // The same list in OpenAI's shape, for its SDKs (GET /v1/models there).
      object: 'list',
      data: models.map(openAIModel),
    })
  },
})
