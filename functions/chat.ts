import { randomUUID } from 'node:crypto'
import { limitedUserOf } from '../lib/access/control.ts'
import { chatBodySchema, turnSettings, type ChatBody } from '../lib/http/chat-input.ts'
import type { Config } from '../lib/shared/config.ts'
import { answerTurn } from '../lib/generation/chat-turn.ts'
import { chatOnce } from '../lib/generation/replay.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem, noSuchSession } from '../lib/shared/problem.ts'
import { parseInput } from '../lib/http/validate.ts'
import { readImageBody } from '../lib/images/image-body.ts'
import { toolsFor } from '../lib/tools/tool-turn.ts'
import { knowledgeFiles } from '../lib/documents/knowledge.ts'
import { retrieve } from '../lib/documents/retrieval.ts'
import { imageBodyBytes, imagesForModel, storedAsPrepared, type PreparedImage } from '../lib/images/image-input.ts'

const schemas = new WeakMap<Config, ReturnType<typeof chatBodySchema>>()

/**
 * POST /v1/chat: stores the user's message (after the session's active leaf, or with `edit_of`
 * beside the message it edits), then relays Ollama's reply as SSE (or as one JSON answer with
 * `stream: false`) while storing it. With `files` or `collections` (or those the session keeps),
 * the best chunks of those documents are given to the model as numbered sources (docs/documents.md).
 * The reply belongs to the server: a client that goes away does not stop it. With an
 * Idempotency-Key, a retry of the same request gets the same reply.
 */
export default defineFunction({
  name: 'chat',
  method: 'POST',
  path: '/v1/chat',
  maxBodyBytes: imageBodyBytes,
  async handle(request, { app, principal }) {
    const acceptedAt = performance.now()
    const { config } = app
    let schema = schemas.get(config)
    if (!schema) schemas.set(config, (schema = chatBodySchema(config)))
    const body: ChatBody = parseInput(schema, await readImageBody(request, imageBodyBytes(config)), 'request body')

    return chatOnce(app, request, principal.userId, 'POST /v1/chat', body, body.stream, async (onStarted) => {
      // Someone else's session is answered as a missing one would be if it could not be created.
      const session = body.session_id === undefined ? undefined : await app.store.sessionOwnerAndSettings(body.session_id)
      const owner = session?.ownerId
      if (owner !== undefined && owner !== principal.userId) throw noSuchSession(body.session_id!)
      // What this turn sends wins; the rest comes from the session's settings (a new session keeps this turn's).
      const { model, options, think, keep, files, collections } = turnSettings(config, session?.settings, body)
      // An edit: the new message goes beside the one it replaces, after the same parent.
      let parentId: string | null | undefined
      let keptImages: PreparedImage[] = []
      if (body.edit_of !== undefined) {
        if (body.session_id === undefined) throw new HttpProblem(400, 'validation', 'edit_of needs the session_id of the message it edits.')
        if (owner === undefined) throw noSuchSession(body.session_id)
        const edited = await app.store.getSessionMessage(body.session_id, body.edit_of)
        if (edited?.role !== 'user') throw new HttpProblem(404, 'not_found', `No user message has the id ${body.edit_of} in session ${body.session_id}.`)
        parentId = edited.parent_id
        // The edited question's images stay with its new version, unless the edit sends its own (`[]`: none).
        if (body.images === undefined) keptImages = (await app.store.imagesOf([edited.id], true)).get(edited.id)?.map(storedAsPrepared) ?? []
      }
      // Images: only for a model that sees, each read, checked and re-encoded before anything is stored.
      const sources = (body.images ?? []).map((text, index) => ({ text, path: `images[${index}]` }))
      const [sent] = await imagesForModel(app, model, [{ path: 'images', sources }])
      if (keptImages.length) await app.ollama.requireCapability(model, 'vision', 'see the images of the message this edits')
      const images = keptImages.length ? keptImages : sent
      const tools = await toolsFor(app, model, body.tools)
      // Documents: the ids this turn sends must be the caller's; those a chat kept may be gone since.
      const knowledge = await knowledgeFiles(app.database.documents, principal.userId, files, collections, body)
      const retrieved = knowledge.length ? await retrieve(app, knowledge, body.message, config.ragTopK) : []
      // Counted from here on: a shutdown waits for this chat, wherever it is.
      const reservation = await app.generations.reserve(body.session_id ?? randomUUID(), limitedUserOf(principal))
      const turn = { model, options, think, format: body.format, stream: body.stream, message: body.message, system: body.system, settings: keep, images, tools, parentId, onStarted, newSession: body.session_id === undefined, sources: retrieved }
      return answerTurn(app, reservation, turn, principal.userId, acceptedAt)
    })
  },
})
