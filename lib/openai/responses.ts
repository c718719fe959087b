import * as v from 'valibot'
import { limitedUserOf, type Principal } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import { isModelAllowed } from '../shared/models.ts'
import { newId, ReasoningEffort, thinkOfEffort, toOllamaTools, unsupported } from './wire.ts'
import type { ChatMessage } from '../ollama/client.ts'
import { HttpProblem, shuttingDown } from '../shared/problem.ts'
import { eventAt, eventCount, eventFrame, responseEvents, responseObject, ResponseRun, sessionIdOf, type McpRun, type RunningResponse } from './response-run.ts'
import { deltaEndsOf, isRunning } from './response-output.ts'
import { NO_FRAMES, untilEnded } from '../generation/elsewhere.ts'
import { followEvents, type EventSource } from '../shared/sse.ts'
import { boundedText, hasFunctionItems, isMessage, itemsOfResponse, parseInputItems, preparedInput, resolveReferences, toOllamaChat, withChainImages, type ChainMessage, type ItemType } from './response-input.ts'
import { withImageBytes } from '../images/image-input.ts'
import type { InputItem, InputMessage, ResponseParams, StoredResponse } from '../store/response-store.ts'
import type { ContextCut, PromptMessage } from '../store/chat-store.ts'
import { budgetOf, planPrompt, type PromptPlan } from '../generation/context-budget.ts'
import { parseAt } from '../http/validate.ts'
import { timestamp } from '../shared/clock.ts'
import { answeredApprovals, BUILTIN_TYPES, responseMcp } from './mcp-tools.ts'
import { forcedToolOf } from './forced-tool.ts'
import { fileSearchItem, fileSearchOf, questionOf, searchVectorStores } from './file-search.ts'
import { SOURCES_SHARE, sourcesMessage, sourcesWithin } from '../documents/sources.ts'
import type { RetrievedChunk } from '../documents/retrieval.ts'
import type { ChatRequest } from '../ollama/client.ts'

const whole = (min: number, max: number) => v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max))))
const number = (min: number, max: number) => v.optional(v.nullable(v.pipe(v.number(), v.minValue(min), v.maxValue(max))))

const TextFormat = v.variant('type', [
  v.looseObject({ type: v.literal('text') }),
  v.looseObject({ type: v.literal('json_object') }),
  v.looseObject({ type: v.literal('json_schema'), name: v.optional(v.string()), schema: v.record(v.string(), v.unknown()) }),
])

/** The fields of POST /v1/responses this server reads; others are ignored. */
export const CreateResponseBody = v.looseObject({
  model: v.pipe(v.string(), v.trim(), v.nonEmpty()),
  // Checked item by item (lib/openai/response-input.ts), so that an error names the item and the field.
  input: v.union([v.string(), v.array(v.unknown())], 'must be a string or an array of items'),
  instructions: v.optional(v.nullable(v.string())),
  previous_response_id: v.optional(v.nullable(v.string())),
  conversation: v.optional(v.nullable(v.union([v.string(), v.looseObject({ id: v.string() })]))),
  store: v.optional(v.nullable(v.boolean())),
  background: v.optional(v.nullable(v.boolean())),
  stream: v.optional(v.nullable(v.boolean())),
  max_output_tokens: whole(1, 1_000_000),
  temperature: number(0, 2),
  top_p: number(0, 1),
  metadata: v.optional(v.nullable(v.pipe(v.record(v.string(), v.pipe(v.string(), v.maxLength(512))), v.check((record) => Object.keys(record).length <= 16, 'at most 16 keys')))),
  text: v.optional(v.nullable(v.looseObject({ format: v.optional(TextFormat) }))),
  tools: v.optional(v.nullable(v.pipe(v.array(v.looseObject({ type: v.string() })), v.maxLength(128, 'must have at most 128 tools')))),
  tool_choice: v.optional(v.nullable(v.unknown())),
  truncation: v.optional(v.nullable(v.picklist(['auto', 'disabled'], 'must be "auto" or "disabled"'))),
  // `effort` becomes Ollama's `think` (docs/openai.md "Reasoning"); a summary is not made here.
  reasoning: v.optional(v.nullable(v.looseObject({ effort: ReasoningEffort }))),
  // Only `file_search_call.results` changes an answer here; other values are taken and change nothing.
  include: v.optional(v.nullable(v.pipe(v.array(v.pipe(v.string(), v.maxLength(100))), v.maxLength(16, 'must have at most 16 values')))),
})

const INPUT_ITEM_TYPES: ItemType[] = ['message', 'item_reference', 'function_call', 'function_call_output', 'mcp_approval_response', 'reasoning', 'file_search_call', 'web_search_call', 'code_interpreter_call']

/** A function tool in the Responses API's flat shape. */
const FunctionTool = v.looseObject({
  type: v.literal('function'),
  name: v.pipe(v.string(), v.regex(/^[\w-]{1,64}$/, 'must be 1 to 64 letters, digits, _ or -')),
  description: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(10_000, 'must be at most 10000 characters')))),
  parameters: v.optional(v.nullable(v.record(v.string(), v.unknown()))),
  strict: v.optional(v.nullable(v.boolean())),
})

/**
 * The function tools of a request, checked; `mcp` tools are lib/openai/mcp-tools.ts's,
 * `file_search` lib/openai/file-search.ts's, and other built-in tools (web search, …) are refused
 * naming them.
 */
function functionTools(tools: CreateResponseBody['tools']): Array<v.InferOutput<typeof FunctionTool>> {
  return (tools ?? []).flatMap((tool, index) => {
    if (tool.type === 'mcp' || tool.type === 'file_search' || Object.hasOwn(BUILTIN_TYPES, tool.type)) return []
    if (tool.type !== 'function') {
      throw unsupported(`tools[${index}].type`, `tools[${index}].type: tools of type ${JSON.stringify(tool.type.slice(0, 64))} are not supported here; "function" tools, which your code runs, "mcp" tools on the MCP servers this server is configured with, "file_search", and "web_search" and "code_interpreter" when their built-in tools are configured.`)
    }
    return [parseAt(FunctionTool, tool, `tools[${index}]`)]
  })
}
export type CreateResponseBody = v.InferOutput<typeof CreateResponseBody>

/** `tool_choice` as the response echoes it (checked by forcedToolOf first). */
function echoedToolChoice(choice: unknown): NonNullable<ResponseParams['tool_choice']> {
  if (choice === 'none' || choice === 'required') return choice
  if (typeof choice === 'object' && choice !== null && 'name' in choice) return { type: 'function', name: String(choice.name) }
  return 'auto'
}

/** A conversation's session, when it is the principal's; 404 as OpenAI says otherwise. */
export async function conversationSession(app: AppContext, principal: Principal, conversationId: string): Promise<string> {
  const sessionId = sessionIdOf(conversationId)
  if (!sessionId || !(await app.store.getSession(sessionId, principal.userId))) {
    throw new HttpProblem(404, 'not_found', `Conversation with id '${conversationId}' not found.`, { param: 'conversation' })
  }
  return sessionId
}

/** A stored response of the principal's, or 404 as OpenAI says it. */
export async function ownedResponse(app: AppContext, principal: Principal, id: string): Promise<StoredResponse> {
  const response = await app.responses.store.get(id, principal.userId)
  if (!response) throw new HttpProblem(404, 'not_found', `Response with id '${id}' not found.`)
  return response
}

/**
 * What a retry of POST /v1/responses (the same Idempotency-Key and body) answers: the response
 * the first request made, as it was answered: followed from its start (stream), or the response
 * object (background: as it is now; else once it has ended, waiting for it while it runs).
 */
export async function replayResponse(app: AppContext, principal: Principal, id: string, body: { stream?: boolean | null | undefined; background?: boolean | null | undefined }): Promise<Response> {
  if (body.stream) return followResponse(app, principal, id, -1)
  const running = app.responses.registry.get(id)
  if (body.background) return Response.json(responseObject(running?.run?.record ?? await ownedResponse(app, principal, id)))
  if (running) await running.settled
  const stored = await ownedResponse(app, principal, id)
  const elsewhere = runningElsewhere(app, principal, stored, NO_FRAMES)
  if (elsewhere) await untilEnded(elsewhere)
  return Response.json(responseObject(elsewhere ? await ownedResponse(app, principal, id) : stored))
}

/**
 * A response's events after `after` (-1: all) as an event stream: live while it runs (a queued
 * one's begin once Ollama answers), from the store once it has ended.
 */
export async function followResponse(app: AppContext, principal: Principal, id: string, after: number): Promise<Response> {
  const running = app.responses.registry.get(id)
  if (running) {
    // One that cannot start has its end stored.
    const run = await running.started.catch(() => undefined)
    if (run) return followEvents(responseEvents(run, after), null, app.config.sseHeartbeatMs)
    await running.settled
  }
  const stored = await ownedResponse(app, principal, id)
  const elsewhere = runningElsewhere(app, principal, stored, after)
  return followEvents(elsewhere ?? responseEvents(stored, after), null, app.config.sseHeartbeatMs)
}

/**
 * The events of a response another instance runs (several instances on PostgreSQL), after
 * `after`, through the database; undefined when it runs nowhere else. When it ended without its
 * terminal event (its owner died), that event is made from the stored response.
 */
export function runningElsewhere(app: AppContext, principal: Principal, stored: StoredResponse, after: number): EventSource | undefined {
  const { cluster } = app.database
  if (!cluster || !isRunning(stored)) return undefined
  return cluster.follow(stored.id, after, async (nextSeq) => {
    const now = await app.responses.store.get(stored.id, principal.userId)
    if (!now) return []
    if (isRunning(now)) return false
    return [eventFrame({ ...eventAt(now, eventCount(now) - 1, deltaEndsOf(now)), sequence_number: nextSeq })]
  })
}

/**
 * Accepts a response: checks it, takes its slot (MAX_CONCURRENT_CHATS; one per conversation),
 * stores it (and its input in the conversation's session), and starts it on the Ollama pool.
 * `started` settles once Ollama answered (the run), or rejects with a problem; a background
 * response that cannot start is stored `failed` instead.
 */
export async function acceptResponse(app: AppContext, principal: Principal, body: CreateResponseBody, acceptedAt: number): Promise<{ record: StoredResponse; started: Promise<ResponseRun> }> {
  const { config } = app
  const tools = functionTools(body.tools)
  const toolChoice = body.tool_choice ?? 'auto'
  const offeredTools = toolChoice === 'none' ? [] : toOllamaTools(tools.map(({ name, description, parameters }) => ({ type: 'function' as const, function: { name, ...(description ? { description } : {}), ...(parameters ? { parameters } : {}) } })))
  // "required" or a named function: asked for as JSON in the call's shape (lib/openai/forced-tool.ts).
  const forced = forcedToolOf(toolChoice, offeredTools)
  if (forced && body.text?.format && body.text.format.type !== 'text') throw unsupported('text.format', 'text.format cannot be used with a tool_choice that forces a call: the call sets the answer\'s format.')
  if (body.instructions) boundedText(body.instructions, config, 'instructions')
  const store = body.store ?? true
  if (!store && body.background) throw unsupported('background', 'background requires store: true.')
  const conversationId = typeof body.conversation === 'string' ? body.conversation : body.conversation?.id
  if (conversationId && body.previous_response_id) throw unsupported('previous_response_id', 'previous_response_id and conversation cannot be used together.')
  if (conversationId && !store) throw unsupported('store', 'A response in a conversation is stored in it; store: false cannot be used with conversation.')
  if (!isModelAllowed(body.model, app.config.allowedModels)) {
    throw new HttpProblem(404, 'model_not_found', `The model '${body.model}' does not exist or you do not have access to it.`, { param: 'model' })
  }
  const think = thinkOfEffort(body.reasoning?.effort)
  if (think !== undefined && think !== false) await app.ollama.requireCapability(body.model, 'thinking', 'reason (send reasoning.effort "none", or pick a model that can)')
  const sessionId = conversationId ? await conversationSession(app, principal, conversationId) : null
  const chain = body.previous_response_id ? await app.responses.store.chain(body.previous_response_id, principal.userId) : []
  if (body.previous_response_id && chain.length === 0) {
    throw new HttpProblem(404, 'not_found', `Previous response with id '${body.previous_response_id}' not found.`, { param: 'previous_response_id' })
  }
  const sent = await resolveReferences(app, principal, parseInputItems(body.input, config, 'input', INPUT_ITEM_TYPES, true), 'input')
  const input = await preparedInput(app, body.model, sent, 'input')
  const mcp = toolChoice === 'none' ? null : await responseMcp(app, body.model, body.tools ?? [])
  // Checked with tool_choice "none" too; searched only when a tool may be used.
  const fileSearch = fileSearchOf(body.tools ?? [], config.ragTopK)
  const question = fileSearch && toolChoice !== 'none' ? questionOf(input, chain) : null
  const found = fileSearch ? await searchVectorStores(app, principal, fileSearch, question) : []
  if (sessionId && (tools.length > 0 || mcp || hasFunctionItems(input))) {
    throw unsupported('conversation', 'Function tools and the tools this server runs (mcp, web_search, code_interpreter) and their items cannot be used in a conversation here (it keeps messages only); chain with previous_response_id instead.')
  }
  if (mcp && tools.length > 0) throw unsupported('tools', 'tools: function tools and the tools this server runs (mcp, web_search, code_interpreter) cannot be offered in one response here.')
  if (mcp && forced) throw unsupported('tool_choice', 'tool_choice can force a call of a function tool only, not of a tool this server runs.')
  // Calls approved in this input run before the model is asked: it reads their results.
  const approved = await answeredApprovals(mcp, chain, input, AbortSignal.timeout(config.chatTimeoutMs))
  const truncation = body.truncation ?? 'disabled'
  const prompt = await planResponsePrompt(app, principal.userId, body, truncation, sessionId, chain, [...input, ...approved.outputs], found)
  const serverItems = fileSearch && toolChoice !== 'none' ? [fileSearchItem(question, prompt.sources)] : []
  // Web pages the built-in tools read are numbered after the file search's sources.
  mcp?.turn.numberSourcesAfter(prompt.sources.length)
  const format = body.text?.format
  const record: StoredResponse = {
    id: newId('resp'),
    owner_id: principal.userId,
    session_id: sessionId,
    previous_response_id: body.previous_response_id ?? null,
    model: body.model,
    instructions: body.instructions ?? null,
    status: body.background ? 'queued' : 'in_progress',
    background: body.background ?? false,
    input,
    output_text: '',
    deltas: [],
    tool_calls: [],
    mcp_items: serverItems,
    reasoning: null,
    usage: null,
    incomplete_reason: null,
    error: null,
    params: {
      max_output_tokens: body.max_output_tokens ?? null,
      temperature: body.temperature ?? null,
      top_p: body.top_p ?? null,
      metadata: body.metadata ?? {},
      text_format: format ?? { type: 'text' },
      store,
      ...(tools.length || mcp || fileSearch ? { tools: [...tools, ...(mcp?.echo ?? []), ...(fileSearch ? [fileSearch.echo] : [])], tool_choice: echoedToolChoice(toolChoice) } : {}),
      truncation,
      ...(body.reasoning?.effort ? { reasoning_effort: body.reasoning.effort } : {}),
      ...(prompt.chainCut !== undefined ? { context_cut: prompt.chainCut } : {}),
      ...(body.include?.length ? { include: body.include } : {}),
    },
    created_at: timestamp(),
    completed_at: null,
  }

  // Counted from here on; a conversation has one reply at a time, like a session.
  const reservation = await app.generations.reserve(sessionId ?? record.id, limitedUserOf(principal))
  let replyId: string | null = null
  try {
    if (store) await app.responses.store.insert(record)
    if (sessionId) {
      // Messages only: function items were refused above for a conversation.
      replyId = await app.store.addResponseTurn(sessionId, principal.userId, conversationMessages(input), body.model)
      // The conversation's reply lists what it was given, as a chat's does.
      if (prompt.sources.length) await app.database.documents.recordSources(replyId, prompt.sources.map(({ content: _, ...source }) => source))
      if (prompt.plan.changed) await keepConversationCut(app, sessionId, prompt.plan)
    }
  } catch (error) {
    reservation.release()
    throw error
  }

  const { messages } = prompt
  const options = {
    num_ctx: app.config.defaultNumCtx,
    ...(record.params.max_output_tokens != null ? { num_predict: record.params.max_output_tokens } : {}),
    ...(record.params.temperature != null ? { temperature: record.params.temperature } : {}),
    ...(record.params.top_p != null ? { top_p: record.params.top_p } : {}),
  }
  const ollamaFormat = format?.type === 'json_object' ? 'json' : format?.type === 'json_schema' ? format.schema : undefined

  let liveRun: ResponseRun | undefined
  // A background response outlives the request that made it: its run is a trace of its own,
  // linked to the request's (docs/tracing.md), ended with the run.
  const requestSpan = app.tracer.current()?.context
  const runSpan = record.background && app.tracer.enabled
    ? app.tracer.start('response.run', { parent: null, links: requestSpan ? [requestSpan] : [], attributes: { 'chat_ollama.response.id': record.id, 'gen_ai.request.model': body.model } })
    : undefined
  const started = (runSpan ? <T>(work: () => Promise<T>) => app.tracer.within(runSpan, work) : <T>(work: () => Promise<T>) => work())(async () => {
    const pinned = sessionId ? await app.store.sessionHost(sessionId) : null
    const ollamaTools = forced ? [] : toolChoice === 'none' ? [] : mcp ? mcp.turn.definitions : offeredTools
    const request: ChatRequest = {
      model: body.model,
      messages: forced ? [...messages, forced.instruction] : messages,
      options,
      truncate: false,
      ...(forced ? { format: forced.format } : ollamaFormat ? { format: ollamaFormat } : {}),
      ...(ollamaTools.length ? { tools: ollamaTools } : {}),
      ...(think === undefined ? {} : { think }),
    }
    const lease = await app.ollama.startChat(request, reservation.signal, pinned)
    // Each later model call of a response with MCP tools goes to the same host, one lease at a time.
    let current = lease
    const mcpRun: McpRun | undefined = mcp ? {
      turn: mcp.turn,
      labels: mcp.labels,
      next: async (added, signal) => {
        request.messages = [...request.messages, ...added]
        current.release()
        current = await app.ollama.startChat(request, signal, lease.host)
        return current.stream
      },
    } : undefined
    // The items it has before the model answers (its file search, each MCP server's tools, calls
    // made on approval) are stored before anyone can follow it: a crash before its first text's
    // checkpoint keeps what a client was sent.
    record.mcp_items = [...serverItems, ...(mcp ? [...mcp.listings, ...approved.items] : [])]
    if (store) {
      await app.responses.store.markStarted(record.id)
      if (record.mcp_items.length) await app.responses.store.checkpoint(record.id, '', [], record.mcp_items, null)
    }
    const run = new ResponseRun(record, lease.stream, {
      responses: store ? app.responses.store : null,
      conversation: sessionId && replyId ? { store: app.store, replyId, host: lease.host } : null,
      log: app.log,
      metrics: app.metrics,
      checkpointIntervalMs: app.config.checkpointIntervalMs,
      chatTimeoutMs: app.config.chatTimeoutMs,
      acceptedAt,
      // store: false leaves nothing anywhere, events included: only this instance can follow it.
      publisher: store ? app.database.cluster?.publisher(record.id) ?? null : null,
      mcp: mcpRun,
      forced: forced ?? undefined,
    })
    liveRun = run
    // What Ollama counted for this prompt corrects the next estimates.
    void run.outcome.then((ended) => ended.usage && app.tokens.observe(body.model, prompt.counted, ended.usage.input_tokens))
    // Shutdown past its grace, or a cancel through the session, stop the run too; also one that
    // came while Ollama had answered but the run was not made yet (markStarted above).
    const stop = () => run.stop(reservation.abortReason === 'cancelled' ? 'cancelled' : 'interrupted')
    if (reservation.signal.aborted) stop()
    else reservation.signal.addEventListener('abort', stop, { once: true })
    void run.outcome.finally(() => current.release())
    return run
  })

  const settled = started.then(
      (run) => run.outcome,
      async (error: unknown) => {
        // Never started: a background response is stored failed (or cancelled); the rest is undone.
        const cancelled = reservation.abortReason === 'cancelled'
        if (record.background) {
          // Aborted by shutdown past its grace, or refused by Ollama (down, busy, no such model).
          const problem = reservation.abortReason === 'shutdown'
            ? shuttingDown('The server shut down before the response started.')
            : error instanceof HttpProblem ? error : undefined
          await app.responses.store.finish(record.id, {
            status: cancelled ? 'cancelled' : 'failed',
            outputText: '',
            deltas: [],
            toolCalls: [],
            mcpItems: [...serverItems, ...approved.items],
            reasoning: null,
            usage: null,
            incompleteReason: null,
            error: cancelled ? null : { code: problem?.kind ?? 'server_error', message: problem?.detail ?? 'The response could not start.' },
          })
        } else if (store) {
          await app.responses.store.delete(record.id, principal.userId)
        }
        if (replyId) await app.store.discardReply(replyId)
      },
    ).finally(() => {
      reservation.release()
      runSpan?.end()
    })
  const entry: RunningResponse = {
    reservation,
    started,
    settled,
    get run() {
      return liveRun
    },
  }
  app.responses.registry.add(record.id, entry)
  return { record, started }
}

/** A conversation's input as its session stores it: its messages (reasoning sent back is not kept). */
const conversationMessages = (input: InputItem[]) =>
  input.filter(isMessage).map(({ role, text, images }) => ({
    role: role === 'developer' ? 'system' : role,
    content: text,
    // Stored once, under the ids the response's input lists them by.
    images: images?.flatMap((image) => (image.data ? [{ id: image.id, mediaType: image.media_type, width: image.width, height: image.height, data: image.data }] : [])),
  }))

interface ResponsePrompt {
  /** What Ollama is sent. */
  messages: ChatMessage[]
  plan: PromptPlan
  /** Along a previous_response_id chain with `auto`: the cut to keep with this response. */
  chainCut: number | undefined
  /** The found chunks that fit its share of the budget, numbered as the model was given them. */
  sources: RetrievedChunk[]
  /** What Ollama's count of the prompt corrects the estimate by: the plan's messages and the sources. */
  counted: PromptMessage[]
}

/**
 * A response's prompt within the context budget (docs/long-conversations.md): its
 * instructions, then the conversation's history or the previous_response_id chain, then its
 * input. `auto` cuts whole oldest turns as a chat does (the cut kept with the conversation, or
 * with this response for a chain); `disabled`, OpenAI's default, answers 400
 * context_length_exceeded when the whole history does not fit. A file search's `found` chunks
 * take their share of the budget first and go just before the question, as a chat's sources.
 */
async function planResponsePrompt(app: AppContext, ownerId: string, body: CreateResponseBody, truncation: 'auto' | 'disabled', sessionId: string | null, chain: StoredResponse[], input: InputItem[], found: RetrievedChunk[]): Promise<ResponsePrompt> {
  const { config } = app
  const whole = budgetOf(config.defaultNumCtx, body.max_output_tokens ?? undefined, config)
  const { sources, tokens: sourcesTokens } = sourcesWithin(app.tokens, body.model, found, Math.floor(whole * SOURCES_SHARE))
  const budget = whole - sourcesTokens
  // Instructions of earlier responses are not carried on; their inputs and outputs are.
  const instructions: PromptMessage[] = body.instructions ? [{ id: null, role: 'system', content: body.instructions }] : []
  let history: PromptMessage[]
  let cut: ContextCut | null
  let chatMessages: ChainMessage[] = []
  const inMemory = new Map<PromptMessage, Uint8Array[]>()
  if (sessionId) {
    const earlier = await app.store.history(sessionId)
    const given = conversationMessages(input).map(({ role, content, images }) => ({ entry: { id: null, role, content, imageCount: images?.length }, images: images?.map((image) => image.data) ?? [] }))
    for (const { entry, images } of given) if (images.length) inMemory.set(entry, images)
    history = [...earlier.messages, ...given.map(({ entry }) => entry)]
    cut = earlier.cut
  } else {
    chatMessages = toOllamaChat([...chain.flatMap(itemsOfResponse), ...input])
    // Each message's index in the chain is its id: a chain only grows, so an index stays put.
    history = chatMessages.map((message, index) => ({
      id: String(index), role: message.role, content: message.content + (message.tool_calls ? JSON.stringify(message.tool_calls) : ''), imageCount: (message.images?.length ?? 0) + (message.imageIds?.length ?? 0),
    }))
    const previous = chain.at(-1)?.params.context_cut
    cut = previous === undefined ? null : { messageId: String(previous), summary: null }
  }
  const planned = (keep: ContextCut | null) => planPrompt({
    model: body.model, history: [...instructions, ...history], cut: keep, budget, lowWater: config.contextLowWater, summaryTokens: 0, estimator: app.tokens,
  })
  let plan: PromptPlan
  try {
    plan = planned(truncation === 'auto' ? cut : null)
  } catch (error) {
    throw (error as HttpProblem).kind === 'context_overflow' ? tooLong((error as HttpProblem).detail) : error
  }
  if (truncation === 'disabled' && plan.dropped > 0) {
    throw tooLong(`The conversation needs about ${app.tokens.estimate(body.model, [...instructions, ...history])} tokens, more than the ${budget} this response has (num_ctx ${config.defaultNumCtx} less the reply's reserve); set truncation to "auto" to drop its oldest turns.`)
  }
  // Stored images are read for the messages sent only (a cut one's never are).
  const messages = sessionId
    ? await withImageBytes(app.store, plan.messages, inMemory)
    : await Promise.all(plan.messages.map((message) => (message.id === null ? { role: message.role, content: message.content } : withChainImages(app, ownerId, chatMessages[Number(message.id)]!))))
  const chainCut = !sessionId && truncation === 'auto' && plan.cut.messageId !== null ? Number(plan.cut.messageId) : undefined
  const sourcesEntry = sources.length ? sourcesMessage(sources) : null
  if (sourcesEntry) {
    const question = messages.findLastIndex((message) => message.role === 'user')
    messages.splice(question < 0 ? messages.length : question, 0, { role: 'system', content: sourcesEntry.content })
  }
  return { messages, plan, chainCut, sources, counted: sourcesEntry ? [...plan.messages, sourcesEntry] : plan.messages }
}

const tooLong = (detail: string) => new HttpProblem(400, 'context_length_exceeded', detail, { param: 'input' })

/** Keeps a conversation's new cut; one at a message of this response's input is found once that input is stored. */
async function keepConversationCut(app: AppContext, sessionId: string, plan: PromptPlan): Promise<void> {
  let messageId = plan.cut.messageId
  if (messageId === null) {
    // The input is the end of the stored history; the cut is at its first message sent.
    const stored = (await app.store.history(sessionId)).messages
    messageId = stored[stored.length - plan.sent.filter((message) => message.id === null).length]?.id ?? null
  }
  await app.store.setContextCut(sessionId, { messageId, summary: null })
}
