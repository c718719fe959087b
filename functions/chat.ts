import { randomUUID } from 'node:crypto'
import { limitedUserOf } from '../lib/access/control.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { chatBodySchema, ollamaOptions, type ChatBody } from '../lib/http/chat-input.ts'
import type { Config } from '../lib/shared/config.ts'
import type { AppContext } from '../lib/context.ts'
import type { Generation, GenerationDetails, GenerationOutcome, GenerationSettings } from '../lib/generation/generation.ts'
import type { Reservation } from '../lib/generation/registry.ts'
import type { HostLease } from '../lib/ollama/pool.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem, noSuchSession, shuttingDown } from '../lib/shared/problem.ts'
import { followEvents } from '../lib/shared/sse.ts'
import { parseInput } from '../lib/http/validate.ts'

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
  async handle(request, { app, principal }) {
    const acceptedAt = performance.now()
    const { config } = app
    let schema = schemas.get(config)
    if (!schema) schemas.set(config, (schema = chatBodySchema(config)))
    const body: ChatBody = parseInput(schema, await readJsonBody(request, config.maxBodyBytes), 'request body')

    // Someone else's session is answered as a missing one would be if it could not be created.
    const owner = body.session_id === undefined ? undefined : await app.store.sessionOwner(body.session_id)
    if (owner !== undefined && owner !== principal.userId) throw noSuchSession(body.session_id!)
    // Counted from here on: a shutdown waits for this chat, wherever it is.
    const reservation = await app.generations.reserve(body.session_id ?? randomUUID(), limitedUserOf(principal))
    let generation: Generation
    try {
      // Refused before anything is stored; Ollama's own 404 later (a model removed meanwhile) is still handled.
      if ((await app.ollama.hasModel(body.model)) === false) {
        throw new HttpProblem(404, 'model_not_found', `model '${body.model}' not found`)
      }
      generation = await startGeneration(app, reservation, body, principal.userId, acceptedAt)
    } catch (error) {
      reservation.release()
      throw error
    }

    if (body.stream) return followEvents(generation, null, config.sseHeartbeatMs)
    return jsonAnswer(reservation.sessionId, body.model, await generation.outcome)
  },
})

/**
 * Stores the turn, then asks Ollama. Resolves once Ollama answered (or the set-up was cancelled);
 * rejects with a problem when Ollama refused, leaving the user message stored.
 */
async function startGeneration(app: AppContext, reservation: Reservation, body: ChatBody, ownerId: string, acceptedAt: number): Promise<Generation> {
  const { config, store } = app
  // Committed before Ollama is called: nothing the user wrote is lost to a failure after this.
  const turn = await store.beginTurn({ sessionId: reservation.sessionId, ownerId, content: body.message, system: body.system, model: body.model })
  let lease: HostLease | null
  try {
    // A conversation this turn began has no host yet.
    const pinned = turn.newSession ? null : await store.sessionHost(reservation.sessionId)
    lease = await app.ollama.startChat(
      { model: body.model, messages: await store.history(reservation.sessionId), options: ollamaOptions(body.options, config.defaultNumCtx) },
      reservation.signal,
      pinned,
    )
  } catch (error) {
    if (!reservation.abortReason) {
      // The reply never started: the user message stays, the empty reply goes.
      await store.discardReply(turn.reply.id)
      throw error
    }
    // Cancelled, or the server's grace ran out, while Ollama had not answered: stored as such.
    lease = null
  }
  const details: GenerationDetails = { model: body.model, userMessageId: turn.userMessageId, reply: turn.reply, acceptedAt, host: lease?.host ?? null }
  const settings: GenerationSettings = {
    store,
    cluster: app.database.cluster,
    log: app.log,
    metrics: app.metrics,
    checkpointIntervalMs: config.checkpointIntervalMs,
    chatTimeoutMs: config.chatTimeoutMs,
  }
  if (!lease) return reservation.beginAborted(details, settings)
  const generation = reservation.begin(lease.stream, details, settings)
  // The host counts this chat as outstanding until its reply has ended.
  void generation.outcome.finally(lease.release)
  return generation
}

function jsonAnswer(sessionId: string, model: string, outcome: GenerationOutcome): Response {
  if (outcome.status === 'error') throw new HttpProblem(502, 'ollama', outcome.error ?? 'Ollama failed during the reply.')
  if (outcome.status === 'interrupted') {
    throw shuttingDown(outcome.error ?? undefined)
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
