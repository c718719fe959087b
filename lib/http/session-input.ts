import * as v from 'valibot'
import type { AppContext } from '../context.ts'
import type { Think } from '../shared/chat-options.ts'
import type { Config } from '../shared/config.ts'
import { HttpProblem } from '../shared/problem.ts'
import { CollectionsSchema, FilesSchema, modelName, OptionsSchema, systemPrompt, ThinkSchema, ThinkValue } from './chat-input.ts'
import { jsonObject, strictMessage, wellFormedText } from './validate.ts'

/** A session title: 1..200 characters after trimming, stored trimmed. */
export const title = v.pipe(
  wellFormedText(),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.check((text) => [...text].length <= 200, 'must be at most 200 characters'),
)

/** A folder's name: 1..100 characters after trimming, stored trimmed. */
export const folderName = v.pipe(
  wellFormedText(),
  v.trim(),
  v.minLength(1, 'must not be empty'),
  v.check((text) => [...text].length <= 100, 'must be at most 100 characters'),
)

const knownFields = strictMessage('is not a known field', 'the body must be a JSON object')

/** POST /v1/sessions: a title, a system prompt, and the settings its turns use (docs/api.md "Chat settings"). */
export function createSessionBodySchema(config: Config) {
  return jsonObject(v.strictObject({
    title: v.optional(title),
    system: v.optional(systemPrompt(config)),
    model: v.optional(modelName(config)),
    options: v.optional(OptionsSchema),
    think: ThinkSchema,
    files: FilesSchema,
    collections: CollectionsSchema,
  }, knownFields), 'the body must be a JSON object')
}

/** PATCH /v1/sessions/{id}: what changes; `null` clears a setting (or removes the system prompt, or takes it out of its folder). */
export function updateSessionBodySchema(config: Config) {
  return jsonObject(v.pipe(
    v.strictObject({
      title: v.optional(title),
      system: v.optional(v.nullable(systemPrompt(config))),
      model: v.optional(v.nullable(modelName(config))),
      options: v.optional(OptionsSchema),
      think: v.optional(v.nullable(ThinkValue)),
      files: FilesSchema,
      collections: CollectionsSchema,
      pinned: v.optional(v.boolean('must be true or false')),
      archived: v.optional(v.boolean('must be true or false')),
      folder: v.optional(v.nullable(folderName)),
    }, knownFields),
    v.check((body) => Object.keys(body).length > 0, 'must change something: title, system, model, options, think, files, collections, pinned, archived or folder'),
  ), 'the body must be a JSON object')
}

/**
 * Settings a chat is to keep, checked as a turn would check them, before anything is stored: the
 * model (null: DEFAULT_MODEL) is one Ollama has, and can think when `think` asks it to.
 */
export async function checkedSettings(app: AppContext, model: string | null, think: Think | null): Promise<void> {
  const effective = model ?? app.config.defaultModel
  if ((await app.ollama.hasModel(effective)) === false) throw new HttpProblem(404, 'model_not_found', `model '${effective}' not found`)
  if (think !== null && think !== false) await app.ollama.requireCapability(effective, 'thinking', 'think (send think: false, or pick a model that can)')
}
