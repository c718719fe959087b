import { randomUUID } from 'node:crypto'
import { readJsonBody } from '../lib/body.ts'
import { chatBodySchema, ollamaOptions, type ChatBody } from '../lib/chat-input.ts'
import type { Config } from '../lib/config.ts'
import type { GenerationOutcome, GenerationSettings } from '../lib/generations.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/problem.ts'
import { followGeneration } from '../lib/sse.ts'
import { parseInput } from '../lib/validate.ts'

const schemas = new WeakMap<Config, ReturnType<typeof chatBodySchema>>()

/**
 * POST /v1/chat: stores the user's message, then relays Ollama's reply as SSE (or as one JSON
 * answer with `stream: false`) while storing it. The reply belongs to the server: a client that
 * goes away does not stop it.
 */
export default defineFunction({
  name: 'chat',
  method: 'POST',
  path: '/v1/chat',
  async handle(request, { app }) {
    const { config, store, generations } = app
    let schema = schemas.get(config)
    if (!schema) schemas.set(config, (schema = chatBodySchema(config)))
    const body: ChatBody = parseInput(schema, await readJsonBody(request, config.maxBodyBytes), 'request body')

    const reservation = generations.reserve(body.session_id ?? randomUUID())
    const sessionId = reservation.sessionId
    const settings: GenerationSettings = {
      store,
      log: app.log,
      checkpointIntervalMs: config.checkpointIntervalMs,
      chatTimeoutMs: config.chatTimeoutMs,
    }
    let details: { model: string; userMessageId: string }
    let generation
    try {
      // Stored (committed) before Ollama is called: a failure from here on loses no user text.
      const { userMessageId } = store.addUserTurn({ sessionId, content: body.message, system: body.system })
      details = { model: body.model, userMessageId }
      const stream = await app.ollama
        .startChat({ model: body.model, messages: store.history(sessionId), options: ollamaOptions(body.options, config.defaultNumCtx) }, reservation.signal)
        .catch((error: unknown) => {
          if (reservation.abortReason === 'cancelled') return null
          if (reservation.abortReason === 'shutdown') {
            throw new HttpProblem(503, 'internal', 'The server is shutting down; try again in a moment.', { headers: { 'retry-after': '5' } })
          }
          throw error
        })
      generation = stream ? reservation.begin(stream, details, settings) : reservation.beginCancelled(details, settings)
    } catch (error) {
      reservation.release()
      throw error
    }

    if (body.stream) return followGeneration(generation, 0, config.sseHeartbeatMs)
    return jsonAnswer(sessionId, details.model, await generation.outcome)
  },
})

function jsonAnswer(sessionId: string, model: string, outcome: GenerationOutcome): Response {
  if (outcome.status === 'error') throw new HttpProblem(502, 'ollama', outcome.error ?? 'Ollama failed during the reply.')
  if (outcome.status === 'interrupted') {
    throw new HttpProblem(503, 'internal', outcome.error ?? 'The server shut down before the reply was finished.', { headers: { 'retry-after': '5' } })
  }
  return Response.json({
    id: outcome.messageId,
    session_id: sessionId,
    content: outcome.content,
    model,
    created_at: outcome.createdAt,
    tokens_used: outcome.tokensUsed,
    prompt_tokens: outcome.promptTokens,
    done_reason: outcome.doneReason,
  })
}
