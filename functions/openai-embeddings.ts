import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { embedTexts } from '../lib/documents/embedding.ts'
import { unsupported } from '../lib/openai/wire.ts'
import { isModelAllowed } from '../lib/shared/models.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** OpenAI's limit on the texts of one request. */
const MAX_INPUTS = 2048

const Body = v.looseObject({
  model: v.pipe(v.string(), v.trim(), v.nonEmpty()),
  input: v.union([v.string(), v.array(v.unknown())]),
  encoding_format: v.optional(v.nullable(v.picklist(['float', 'base64']))),
  dimensions: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1)))),
  user: v.optional(v.nullable(v.string())),
})

/**
 * POST /v1/embeddings: OpenAI's Embeddings over Ollama's `/api/embed`. `input` is a string or an
 * array of strings (token arrays are refused: Ollama embeds text); `dimensions` is taken only when
 * it is the model's own size; `encoding_format: "base64"` (the official SDK's default) sends each
 * vector as little-endian float32 bytes. The model is EMBED_MODEL or one ALLOWED_MODELS lets through.
 */
export default defineFunction({
  name: 'openai-embeddings',
  method: 'POST',
  path: '/v1/embeddings',
  errors: 'openai',
  async handle(request, { app }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const texts = typeof body.input === 'string' ? [body.input] : body.input
    if (texts.length === 0 || texts.length > MAX_INPUTS) throw unsupported('input', `input must have 1 to ${MAX_INPUTS} items.`)
    if (!texts.every((text): text is string => typeof text === 'string')) throw unsupported('input', 'input must be a string or an array of strings: token arrays are not taken (Ollama embeds text).')
    if (texts.some((text) => text.trim() === '')) throw unsupported('input', 'input must not hold an empty string.')
    const allowed = body.model === app.config.embedModel || isModelAllowed(body.model, app.config.allowedModels)
    if (!allowed) throw new HttpProblem(404, 'model_not_found', `The model '${body.model}' does not exist or you do not have access to it.`, { param: 'model' })
    const { vectors, promptTokens } = await embedTexts(app.ollama, body.model, texts, { timeoutMs: app.config.chatTimeoutMs, signal: request.signal })
    const size = vectors[0]!.length
    if (body.dimensions != null && body.dimensions !== size) {
      throw unsupported('dimensions', `${body.model} makes vectors of ${size} dimensions; dimensions must be ${size} or left out.`)
    }
    const encode = body.encoding_format === 'base64'
      ? (vector: Float32Array) => Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
      : (vector: Float32Array) => Array.from(vector)
    return Response.json({
      object: 'list',
      data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: encode(vector) })),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    })
  },
})
