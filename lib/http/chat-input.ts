import * as v from 'valibot'
import type { Config } from '../shared/config.ts'
import { isModelAllowed } from '../shared/models.ts'
import { jsonObject, withinChars, strictMessage, uuid, wellFormedText } from './validate.ts'

const wholeNumber = (min: number, max: number, message: string) =>
  v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message))
const between = (min: number, max: number, message: string) =>
  v.pipe(v.number(message), v.finite(message), v.minValue(min, message), v.maxValue(max, message))

const OptionsSchema = jsonObject(v.strictObject(
  {
    temperature: v.optional(between(0, 2, 'must be a number from 0 to 2')),
    max_tokens: v.optional(wholeNumber(1, 1_000_000, 'must be a whole number from 1 to 1000000')),
    top_p: v.optional(between(0, 1, 'must be a number from 0 to 1')),
    top_k: v.optional(wholeNumber(1, 1_000_000, 'must be a whole number from 1 to 1000000')),
    seed: v.optional(wholeNumber(-2_147_483_648, 2_147_483_647, 'must be a 32-bit whole number')),
    stop: v.optional(
      v.pipe(
        v.array(v.pipe(v.string('must be a string'), v.minLength(1, 'must not be empty'), v.maxLength(200, 'must be at most 200 characters')), 'must be an array of strings'),
        v.maxLength(16, 'must have at most 16 entries'),
      ),
    ),
    num_ctx: v.optional(wholeNumber(1, 1_048_576, 'must be a whole number from 1 to 1048576')),
  },
  strictMessage('is not a known option', 'must be an object'),
), 'must be an object')

/** A model the client names: one ALLOWED_MODELS lets through. */
const modelName = (config: Config) => v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(200, 'must be at most 200 characters'),
  v.check((model) => isModelAllowed(model, config.allowedModels), `must be one of ALLOWED_MODELS: ${config.allowedModels.join(', ')}`),
)

/** `tools`: true (every allowed tool) or `SERVER__TOOL` names, each checked against MCP_CONFIG by lib/tools/tool-turn.ts. */
const ToolsSchema = v.optional(v.union([
  v.literal(true),
  v.pipe(v.array(v.pipe(v.string(), v.maxLength(200, 'must be at most 200 characters'))), v.maxLength(128, 'must name at most 128 tools')),
], 'must be true or a list of tool names (SERVER__TOOL)'))

/** `think`: whether a reasoning model thinks first, or how hard (passed to Ollama as it is). */
export const ThinkSchema = v.optional(v.union([v.boolean(), v.picklist(['low', 'medium', 'high'])], 'must be true, false, "low", "medium" or "high"'))

/** The body of a regeneration (all optional; by default the model of the reply it retries). */
export function regenerateBodySchema(config: Config) {
  return jsonObject(v.strictObject(
    {
      model: v.optional(modelName(config)),
      stream: v.optional(v.boolean('must be true or false'), true),
      options: v.optional(OptionsSchema, {}),
      think: ThinkSchema,
      tools: ToolsSchema,
    },
    strictMessage('is not a known field', 'the body must be a JSON object'),
  ), 'the body must be a JSON object')
}

/** The POST /v1/chat body schema under `config`'s limits. */
export function chatBodySchema(config: Config) {
  const max = config.maxMessageChars
  return jsonObject(v.strictObject(
    {
      message: v.pipe(
        wellFormedText('is required and must be a string'),
        v.check((text) => text.trim().length > 0, 'must not be empty'),
        v.check((text) => withinChars(text.trim(), max), `must be at most ${max} characters (MAX_MESSAGE_CHARS)`),
      ),
      session_id: v.optional(v.pipe(uuid(), v.toLowerCase())),
      edit_of: v.optional(v.pipe(uuid(), v.toLowerCase())),
      model: v.optional(modelName(config), config.defaultModel),
      stream: v.optional(v.boolean('must be true or false'), true),
      system: v.optional(v.pipe(wellFormedText(), v.check((text) => withinChars(text, max), `must be at most ${max} characters`))),
      options: v.optional(OptionsSchema, {}),
      think: ThinkSchema,
      tools: ToolsSchema,
      // Each one is read and checked by lib/images/image-input.ts, which names it on a refusal.
      images: v.optional(v.pipe(
        v.array(v.unknown(), 'must be an array of images (data URLs or base64)'),
        v.maxLength(config.maxImagesPerMessage, `must have at most ${config.maxImagesPerMessage} images (MAX_IMAGES_PER_MESSAGE)`),
      )),
    },
    strictMessage('is not a known field', 'the body must be a JSON object'),
  ), 'the body must be a JSON object')
}

export type ChatBody = v.InferOutput<ReturnType<typeof chatBodySchema>>
