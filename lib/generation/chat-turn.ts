import { spanSync } from '../observability/tracing.ts'
import type { AppContext } from '../context.ts'
import type { HostLease } from '../ollama/pool.ts'
import { HttpProblem, shuttingDown } from '../shared/problem.ts'
import { followEvents } from '../shared/sse.ts'
import { budgetOf, contextReport, isContextLengthError, planPrompt, withSummary, type PromptPlan } from './context-budget.ts'
import type { Generation, GenerationDetails, GenerationOutcome, GenerationSettings, ToolLoop } from './generation.ts'
import { ollamaOptions, type ChatRequest } from '../ollama/client.ts'
import type { ChatOptions, Think } from '../shared/chat-options.ts'
import { ToolTurn, toolLimits, type ToolTurnState, type TurnTools } from '../tools/tool-turn.ts'
import { EMPTY_STREAM, type Reservation } from './registry.ts'
import type { ClaimedReply, PausedReply, PromptMessage, ReplySource, SessionSettings } from '../store/chat-store.ts'
import { withImageBytes, type PreparedImage } from '../images/image-input.ts'
import { summarize, SUMMARY_SHARE } from './summary.ts'
import type { RetrievedChunk } from '../documents/retrieval.ts'
import { SOURCES_SHARE, sourcesMessage, sourcesWithin } from '../documents/sources.ts'

/**
 * A chat turn, as POST /v1/chat and a regeneration run it: the prompt planned within the context
 * budget, the turn stored, Ollama asked, and the reply relayed as SSE or answered as JSON.
 */
export interface ChatTurn {
  model: string
  options: ChatOptions
  /** Whether (or how hard) the model reasons first; absent: as Ollama decides (a model that can, does). */
  think?: Think | undefined
  /** "json" or a JSON Schema the reply follows (Ollama's `format`); the reply is stored as the JSON text. */
  format?: 'json' | Record<string, unknown> | undefined
  stream: boolean
  /** The user's new message; absent for a regeneration, which answers the path's last question again. */
  message?: string | undefined
  /** The session's system prompt, stored when it has none yet. */
  system?: string | undefined
  /** What a session this turn makes keeps for its later turns (docs/api.md "Chat settings"). */
  settings?: SessionSettings | undefined
  /** Images shown with the new message, prepared (lib/images/image-input.ts) and stored with it. */
  images?: PreparedImage[] | undefined
  /**
   * What the new message (or, for a regeneration, the reply) follows: the path to it is what the
   * model sees. Absent: the active leaf.
   */
  parentId?: string | null | undefined
  /** The tools the model is offered (docs/tools.md), checked and chosen by lib/tools/tool-turn.ts's toolsFor. */
  tools?: TurnTools | undefined
  /** The session's id was made up for this turn (the request named none): nothing is stored under it yet. */
  newSession?: boolean | undefined
  /** The documents' chunks retrieved for this turn (lib/documents/retrieval.ts), given to the model as numbered sources. */
  sources?: RetrievedChunk[] | undefined
  /** A reply continued (a regeneration with `continue`): its text so far, which the model goes on from. */
  prefix?: string | undefined
  /** Told of the generation once it runs (Ollama answered, or it was stopped before): anything stored from then on stays. */
  onStarted?: ((generation: Generation) => Promise<void>) | undefined
}

/** Runs `turn` in the reserved session and answers it (SSE, or one JSON answer). */
export async function answerTurn(app: AppContext, reservation: Reservation, turn: ChatTurn, ownerId: string, acceptedAt: number): Promise<Response> {
  let generation: Generation
  try {
    // Refused before anything is stored; Ollama's own 404 later (a model removed meanwhile) is still handled.
    if ((await app.ollama.hasModel(turn.model)) === false) {
      throw new HttpProblem(404, 'model_not_found', `model '${turn.model}' not found`)
    }
    if (turn.think !== undefined && turn.think !== false) await app.ollama.requireCapability(turn.model, 'thinking', 'think (send think: false, or pick a model that can)')
    generation = await startGeneration(app, reservation, turn, ownerId, acceptedAt)
  } catch (error) {
    reservation.release()
    throw error
  }
  if (turn.stream) return followEvents(generation, null, app.config.sseHeartbeatMs)
  return jsonAnswer(reservation.sessionId, turn.model, await generation.outcome, generation.context, generation.sources)
}

/**
 * Plans the prompt (refusing, before anything is stored, a message that cannot fit), stores the
 * turn, then asks Ollama. Resolves once Ollama answered (or the set-up was cancelled); rejects
 * with a problem when Ollama refused, leaving the user message stored.
 */
async function startGeneration(app: AppContext, reservation: Reservation, body: ChatTurn, ownerId: string, acceptedAt: number): Promise<Generation> {
  const { config, store } = app
  const sessionId = reservation.sessionId
  const numCtx = body.options.num_ctx ?? config.defaultNumCtx
  const budget = budgetOf(numCtx, body.options.max_tokens, config)
  // A session this turn makes has no approvals to wait on and no history: two reads fewer per new chat.
  const waiting = body.newSession ? [] : await store.pendingApprovals(sessionId)
  if (waiting.length) {
    throw new HttpProblem(409, 'conflict', `A reply in this session waits for the approval of ${waiting.map((call) => `${call.name} (${call.call_id})`).join(', ')}: approve or deny it first (docs/tools.md).`)
  }
  const earlier = body.newSession ? { messages: [], cut: null } : await store.history(sessionId, body.parentId)
  // The turn as it will be stored: the session's system prompt when it has none yet, then the message.
  const system: PromptMessage[] = body.system && !earlier.messages.some((message) => message.role === 'system') ? [{ id: null, role: 'system', content: body.system }] : []
  const newMessage: PromptMessage | null = body.message === undefined ? null : { id: null, role: 'user', content: body.message, imageCount: body.images?.length }
  // Sent last, and not stored again: Ollama continues a conversation that ends with the assistant's words.
  const prefix: PromptMessage[] = body.prefix ? [{ id: null, role: 'assistant', content: body.prefix }] : []
  const planFor = (planBudget: number) => spanSync(app.tracer, 'context.plan', () => planPrompt({
    model: body.model,
    history: newMessage ? [...system, ...earlier.messages, newMessage] : [...earlier.messages, ...prefix],
    cut: earlier.cut,
    budget: planBudget,
    lowWater: config.contextLowWater,
    summaryTokens: config.contextSummary ? Math.floor(budget * SUMMARY_SHARE) : 0,
    estimator: app.tokens,
  }), (planned) => Object.fromEntries(Object.entries(contextReport(planned)).map(([key, value]) => [`chat_ollama.context.${key}`, value])))
  // Sources take their share of the budget first; the conversation is planned in what is left.
  const { sources, tokens: sourcesTokens } = sourcesWithin(app.tokens, body.model, body.sources ?? [], Math.floor(budget * SOURCES_SHARE))
  const sourcesEntry = sources.length ? sourcesMessage(sources) : null
  let plan = planFor(budget - sourcesTokens)

  // Committed before Ollama is called: nothing the user wrote is lost to a failure after this.
  // `leafBefore`: where a regeneration's session returns if Ollama refuses it (a new turn's leaf is its message).
  const turn = newMessage
    ? { ...(await store.beginTurn({ sessionId, ownerId, content: newMessage.content, system: body.system, settings: body.settings, model: body.model, parentId: body.parentId, images: body.images })), leafBefore: undefined }
    : await store.beginReply(sessionId, body.parentId ?? null, body.model).then((reply) => ({ userMessageId: body.parentId ?? null, reply, newSession: false, leafBefore: reply.leafBefore }))
  if (newMessage) newMessage.id = turn.userMessageId
  const listedSources = sources.map(({ content: _, ...source }) => source)
  if (listedSources.length) await app.database.documents.recordSources(turn.reply.id, listedSources)
  const toolTurn = body.tools?.offered.length
    ? new ToolTurn(app.tools, body.tools.offered, toolLimits(app), app.metrics, app.log, { selection: body.tools.selection, options: body.options, think: body.think, sources: listedSources.length })
    : undefined
  const request: ChatRequest = {
    model: body.model,
    messages: [],
    options: ollamaOptions(body.options, config.defaultNumCtx),
    truncate: false,
    ...(toolTurn ? { tools: toolTurn.definitions } : {}),
    ...(body.think === undefined ? {} : { think: body.think }),
    ...(body.format === undefined ? {} : { format: body.format }),
  }
  let lease: HostLease | null
  try {
    // A conversation this turn began has no host yet.
    const pinned = turn.newSession ? null : await store.sessionHost(sessionId)
    const start = async () => {
      if (plan.changed) plan = await keepCut(app, sessionId, body.model, numCtx, plan, newMessage, reservation.signal)
      // The new message's images are at hand; earlier ones are read for the messages sent only.
      request.messages = await withImageBytes(store, plan.messages, newMessage && body.images?.length ? new Map([[newMessage, body.images.map((image) => image.data)]]) : undefined)
      // Just before the question they answer (not stored: later turns see the reply that cites them).
      if (sourcesEntry) request.messages.splice(request.messages.length - 1 - prefix.length, 0, { role: 'system', content: sourcesEntry.content })
      return app.ollama.startChat(request, reservation.signal, pinned)
    }
    try {
      lease = await start()
    } catch (error) {
      // The estimate was short for this model: count higher, cut deeper, and try once more.
      if (!isContextLengthError(error)) throw error
      app.tokens.underestimated(body.model)
      plan = planFor(Math.floor(plan.estimatedTokens * config.contextLowWater) - sourcesTokens)
      lease = await start()
    }
  } catch (error) {
    if (!reservation.abortReason) {
      // The reply never started: the empty reply goes (a regeneration's leaves the path as it
      // was). A session this message began goes with it: a refused first message stores
      // nothing; in an existing session the message stays where its user wrote it.
      await store.discardReply(turn.reply.id, turn.leafBefore)
      if (turn.newSession) await store.deleteSession(sessionId, ownerId)
      throw error
    }
    // Cancelled, or the server's grace ran out, while Ollama had not answered: stored as such.
    lease = null
  }
  const context = contextReport(plan)
  // Each later model call of a turn with tools goes to the same host (its cache holds the prompt so
  // far) with the step added; a host holds one lease of the turn at a time.
  const hosted = hostedCalls(app, request, lease, lease?.host ?? null)
  const details: GenerationDetails = { model: body.model, userMessageId: turn.userMessageId, reply: turn.reply, acceptedAt, host: lease?.host ?? null, context, tools: toolTurn && lease ? { turn: toolTurn, next: hosted.next } : undefined, sources: listedSources, prefix: body.prefix }
  const settings = generationSettings(app)
  if (!lease) {
    const stopped = reservation.beginAborted(details, settings)
    await body.onStarted?.(stopped)
    return stopped
  }
  const generation = reservation.begin(lease.stream, details, settings)
  afterwards(app, generation, hosted.release)
  // What Ollama counted for this prompt corrects the next estimates (after tool steps it counted more than this).
  const sent = sourcesEntry ? [...plan.messages, sourcesEntry] : plan.messages
  void generation.outcome.then((outcome) => outcome.promptTokens && !outcome.toolSteps && app.tokens.observe(body.model, sent, outcome.promptTokens))
  await body.onStarted?.(generation)
  return generation
}

/** Once a reply has ended: its host's lease given back, and the approval clock told of a pause. */
function afterwards(app: AppContext, generation: Generation, release: () => void): void {
  void generation.outcome.finally(release).then((outcome) => {
    if (outcome.status === 'awaiting_approval') return app.approvals.refresh()
  }).catch((error: unknown) => app.log.warn('the tool approval clock could not be set', { error: (error as Error).message }))
}

/** What every generation relays into. */
function generationSettings(app: AppContext): GenerationSettings {
  const { store, config } = app
  return {
    store,
    sources: app.database.documents,
    cluster: app.database.cluster,
    log: app.log,
    metrics: app.metrics,
    checkpoints: app.checkpoints,
    chatTimeoutMs: config.chatTimeoutMs,
    inputs: { store: app.database.inputs, waiters: app.tools.inputs, timeoutMs: config.toolInputTimeoutMs },
    tracer: app.tracer,
  }
}

/**
 * The later model calls of a turn with tools: each the same request with the step added, on the
 * same host when it has one (its cache holds the prompt so far). The host holds one lease of the
 * turn at a time; `release` gives back the last.
 */
function hostedCalls(app: AppContext, request: ChatRequest, first: HostLease | null, host: string | null): { next: ToolLoop['next']; release: () => void } {
  let current = first
  return {
    next: async (added, signal) => {
      request.messages.push(...added)
      current?.release()
      current = null
      current = await app.ollama.startChat(request, signal, host)
      return current.stream
    },
    release: () => current?.release(),
  }
}

/**
 * Resumes a reply that paused for approvals once every call has its answer (docs/tools.md), on
 * this instance: the approved calls run, denials are their results, and the model is asked again
 * with the conversation as stored. Null when it is not such a reply (any more: another instance or
 * an earlier attempt took it); throws the reservation's problem when the server cannot take it now
 * (busy, shutting down), the reply still waiting as it was.
 */
export async function resumeTurn(app: AppContext, paused: PausedReply, userId: string | null): Promise<Generation | null> {
  const reservation = await app.generations.reserve(paused.sessionId, userId)
  let claimed: ClaimedReply | null
  try {
    claimed = await app.store.claimAnsweredReply(paused.replyId)
  } catch (error) {
    reservation.release()
    throw error
  }
  if (!claimed) {
    reservation.release()
    return null
  }
  try {
    return await startResumed(app, reservation, claimed)
  } catch (error) {
    // Taken, and it cannot go on: it ends as an error, not as a reply streaming forever.
    reservation.release()
    await app.store.finishReply(claimed.replyId, { content: '', status: 'error' }).catch(() => {})
    throw error
  }
}

async function startResumed(app: AppContext, reservation: Reservation, claimed: ClaimedReply): Promise<Generation> {
  const { config, store } = app
  const state = JSON.parse(claimed.turn) as ToolTurnState
  // The calls in the order the model made them.
  const order = new Map(state.waiting.map((callId, index) => [callId, index]))
  const calls = [...claimed.calls].sort((a, b) => (order.get(a.call_id) ?? 0) - (order.get(b.call_id) ?? 0))
  const selection = state.selection
  const offered = (await app.tools.offered(true)).filter((tool) => selection === true || selection.includes(tool.name))
  const turn = new ToolTurn(app.tools, offered, toolLimits(app), app.metrics, app.log, state)
  const numCtx = state.options.num_ctx ?? config.defaultNumCtx
  // The path as stored up to the reply (which is empty): its question, and the steps so far.
  const earlier = await store.history(claimed.sessionId, claimed.replyId)
  const plan = planPrompt({
    model: claimed.model,
    history: earlier.messages,
    cut: earlier.cut,
    budget: budgetOf(numCtx, state.options.max_tokens, config),
    lowWater: config.contextLowWater,
    summaryTokens: 0,
    estimator: app.tokens,
  })
  const request: ChatRequest = {
    model: claimed.model,
    messages: await withImageBytes(store, plan.messages),
    options: ollamaOptions(state.options, config.defaultNumCtx),
    truncate: false,
    tools: turn.definitions,
    ...(state.think === undefined ? {} : { think: state.think }),
  }
  const host = await store.sessionHost(claimed.sessionId)
  const hosted = hostedCalls(app, request, null, host)
  const details: GenerationDetails = {
    model: claimed.model,
    userMessageId: null,
    reply: { id: claimed.replyId, createdAt: claimed.createdAt },
    acceptedAt: performance.now(),
    host,
    context: contextReport(plan),
    tools: { turn, next: hosted.next },
    resumed: { calls, events: claimed.events },
    // Its sources so far (documents', web pages'): a web page read after the pause is added to them.
    sources: (await store.getMessage(claimed.replyId))?.sources ?? [],
  }
  const generation = reservation.begin(EMPTY_STREAM, details, generationSettings(app))
  afterwards(app, generation, hosted.release)
  return generation
}

/**
 * Stores a new cut with the session, summarized first when CONTEXT_SUMMARY is on (a failed
 * summary falls back to the plain cut); the plan then sends that summary.
 */
async function keepCut(app: AppContext, sessionId: string, model: string, numCtx: number, plan: PromptPlan, newMessage: PromptMessage | null, signal: AbortSignal): Promise<PromptPlan> {
  // A cut at the new message itself was planned before it had an id.
  const cut = { ...plan.cut, messageId: plan.cut.messageId ?? newMessage?.id ?? null }
  if (app.config.contextSummary) {
    const summary = await summarize(app.ollama, app.log, { model, numCtx, budget: plan.budgetTokens, previous: plan.cut.summary, dropped: plan.newlyDropped, signal })
    if (summary) cut.summary = summary
  }
  await app.store.setContextCut(sessionId, cut)
  return withSummary({ ...plan, cut }, app.tokens, model)
}

export function jsonAnswer(sessionId: string, model: string, outcome: GenerationOutcome, context: Record<string, unknown>, sources: ReplySource[] = []): Response {
  if (outcome.status === 'error') throw new HttpProblem(502, 'ollama', outcome.error ?? 'Ollama failed during the reply.')
  if (outcome.status === 'interrupted') {
    throw shuttingDown(outcome.error ?? undefined)
  }
  return Response.json({
    id: outcome.messageId,
    session_id: sessionId,
    content: outcome.content,
    thinking: outcome.thinking || null,
    thinking_ms: outcome.thinkingMs,
    model,
    created_at: outcome.createdAt,
    tokens_used: outcome.tokensUsed,
    prompt_tokens: outcome.promptTokens,
    tokens_per_second: outcome.tokensPerSecond,
    done_reason: outcome.doneReason,
    ...(outcome.awaiting ? { approval_required: outcome.awaiting } : {}),
    ...(sources.length ? { sources } : {}),
    context,
  })
}
