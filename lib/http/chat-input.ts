import * as v from 'valibot'
import type { Config } from '../shared/config.ts'
import { isModelAllowed } from '../shared/models.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { ChatOptions, Think } from '../shared/chat-options.ts'
import type { SessionSettings } from '../store/chat-store.ts'
import { jsonObject, withinChars, strictMessage, uuid, wellFormedText } from './validate.ts'

const wholeNumber = (min: number, max: number, message: string) =>
  v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(max, message))
const between = (min: number, max: number, message: string) =>
  v.pipe(v.number(message), v.finite(message), v.minValue(min, message), v.maxValue(max, message))

/** A chat's options (kept by a session as its settings too). */
export const OptionsSchema = jsonObject(v.strictObject(
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
export const modelName = (config: Config) => v.pipe(
  v.string('must be a string'),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.maxLength(200, 'must be at most 200 characters'),
  v.check((model) => isModelAllowed(model, config.allowedModels), `must be one of ALLOWED_MODELS: ${config.allowedModels.join(', ')}`),
)

/** A system prompt: at most MAX_MESSAGE_CHARS characters. */
export const systemPrompt = (config: Config) => v.pipe(
  wellFormedText(),
  v.check((text) => withinChars(text, config.maxMessageChars), `must be at most ${config.maxMessageChars} characters (MAX_MESSAGE_CHARS)`),
)

/** `tools`: true (every allowed tool) or `SERVER__TOOL` names, each checked against MCP_CONFIG by lib/tools/tool-turn.ts. */
const ToolsSchema = v.optional(v.union([
  v.literal(true),
  v.pipe(v.array(v.pipe(v.string(), v.maxLength(200, 'must be at most 200 characters'))), v.maxLength(128, 'must name at most 128 tools')),
], 'must be true or a list of tool names (SERVER__TOOL)'))

/** `think`: whether a reasoning model thinks first, or how hard (passed to Ollama as it is). */
export const ThinkValue = v.union([v.boolean(), v.picklist(['low', 'medium', 'high'])], 'must be true, false, "low", "medium" or "high"')
export const ThinkSchema = v.optional(ThinkValue)

/** A `format` schema's bounds: its JSON at most this many characters, and nested at most this deep. */
export const MAX_FORMAT_CHARS = 32_768
export const MAX_FORMAT_DEPTH = 32

/** How deep `value` nests, counted without recursion, stopping once past `limit`. */
function depthOf(value: unknown, limit: number): number {
  let deepest = 0
  const pending: Array<[unknown, number]> = [[value, 1]]
  while (pending.length) {
    const [node, depth] = pending.pop()!
    if (typeof node !== 'object' || node === null) continue
    deepest = Math.max(deepest, depth)
    if (deepest > limit) return deepest
    for (const child of Object.values(node)) pending.push([child, depth + 1])
  }
  return deepest
}

/** `format`: "json", or a JSON Schema object the reply must follow (passed to Ollama, which makes a grammar of it). */
export const FormatSchema = v.optional(v.union([
  v.literal('json'),
  v.pipe(
    v.custom<Record<string, unknown>>((input) => typeof input === 'object' && input !== null && !Array.isArray(input)),
    v.check((schema) => JSON.stringify(schema).length <= MAX_FORMAT_CHARS, `must be at most ${MAX_FORMAT_CHARS} characters of JSON`),
    v.check((schema) => depthOf(schema, MAX_FORMAT_DEPTH) <= MAX_FORMAT_DEPTH, `must nest at most ${MAX_FORMAT_DEPTH} levels deep`),
  ),
], 'must be "json" or a JSON Schema object'))

/** Files and collections one chat may answer from (docs/documents.md). */
export const MAX_CHAT_FILES = 100
export const MAX_CHAT_COLLECTIONS = 20

const idList = (max: number, what: string) => v.optional(v.pipe(
  v.array(v.pipe(uuid(`must be ${what} ids (UUIDs)`), v.toLowerCase()), `must be an array of ${what} ids`),
  v.maxLength(max, `must have at most ${max} ${what} ids`),
  v.transform((ids) => [...new Set(ids)]),
))
/** `files`: ids of the caller's files a turn answers from. */
export const FilesSchema = idList(MAX_CHAT_FILES, 'file')
/** `collections`: ids of the caller's collections a turn answers from. */
export const CollectionsSchema = idList(MAX_CHAT_COLLECTIONS, 'collection')

/** The body of a regeneration (all optional; by default the model of the reply it retries). */
export function regenerateBodySchema(config: Config) {
  return jsonObject(v.strictObject(
    {
      model: v.optional(modelName(config)),
      stream: v.optional(v.boolean('must be true or false'), true),
      options: v.optional(OptionsSchema, {}),
      think: ThinkSchema,
      format: FormatSchema,
      tools: ToolsSchema,
      // The new version starts with the reply's text and the model goes on from there.
      continue: v.optional(v.boolean('must be true or false'), false),
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
      model: v.optional(modelName(config)),
      stream: v.optional(v.boolean('must be true or false'), true),
      system: v.optional(systemPrompt(config)),
      options: v.optional(OptionsSchema, {}),
      think: ThinkSchema,
      format: FormatSchema,
      tools: ToolsSchema,
      files: FilesSchema,
      collections: CollectionsSchema,
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

/**
 * A turn's model, options and think: what the request sends, else what the session keeps (docs/api.md
 * "Chat settings"), else the defaults. `keep`: the settings a session this turn makes starts with.
 * A kept model that ALLOWED_MODELS no longer lets through is refused, naming the setting.
 */
export function turnSettings(config: Config, kept: SessionSettings | undefined, sent: { model?: string | undefined; options: ChatOptions; think?: Think | undefined; files?: string[] | undefined; collections?: string[] | undefined }) {
  const model = sent.model ?? kept?.model ?? config.defaultModel
  if (sent.model === undefined && kept?.model !== undefined && !isModelAllowed(kept.model, config.allowedModels)) {
    throw new HttpProblem(400, 'validation', `This chat's model ${kept.model} is not in ALLOWED_MODELS any more: send a model, or change the chat's (PATCH /v1/sessions/{id}).`, { errors: [{ path: 'model', message: 'the chat\'s model is not allowed' }] })
  }
  const options = { ...kept?.options, ...sent.options }
  const think = sent.think ?? kept?.think
  const files = sent.files ?? kept?.files ?? []
  const collections = sent.collections ?? kept?.collections ?? []
  const keep: SessionSettings = {
    model,
    ...(Object.keys(sent.options).length ? { options: sent.options } : {}),
    ...(sent.think === undefined ? {} : { think: sent.think }),
    ...(sent.files?.length ? { files: sent.files } : {}),
    ...(sent.collections?.length ? { collections: sent.collections } : {}),
  }
  return { model, options, think, files, collections, keep }
}
