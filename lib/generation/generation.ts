import type { ChatResponse, ToolCall as OllamaToolCall } from 'ollama'
import type { Logger } from '../observability/log.ts'
import type { Tracer } from '../observability/tracing.ts'
import type { Metrics } from '../observability/metrics.ts'
import { formatMs, type ChatStream } from '../ollama/client.ts'
import { listedImages } from '../images/attachments.ts'
import { ReplyEventLog, type ReplyEventLimits, type TextEvent } from './reply-events.ts'
import type { FrameListener } from '../shared/sse.ts'
import type { ApprovalDecision, MessageStatus, ReplySource, ToolCall } from '../store/chat-store.ts'
import type { ReplyStore } from '../store/reply-store.ts'
import type { DocumentStore } from '../store/document-store.ts'
import type { ChatMessage } from '../ollama/client.ts'
import { ollamaToolCalls } from '../ollama/client.ts'
import { ToolTurn, type ToolStop } from '../tools/tool-turn.ts'
import type { InputRequest } from '../tools/mcp-hub.ts'
import type { InputWaiters } from '../tools/tool-inputs.ts'
import type { InputStore, ToolInputAnswer } from '../store/input-store.ts'
import { randomUUID } from 'node:crypto'
import { timestamp } from '../shared/clock.ts'
import type { Cluster } from '../store/cluster.ts'
import { problemForUnexpected } from '../shared/problem.ts'
import type { CheckpointClock } from './checkpoint-clock.ts'

export type FinalStatus = Exclude<MessageStatus, 'streaming'>

export interface GenerationOutcome {
  status: FinalStatus
  messageId: string
  createdAt: string
  content: string
  /** The model's reasoning before (and between) its answer, when it thought ('' when it did not). */
  thinking: string
  /** How long it reasoned, over every model call of the turn; null when it did not. */
  thinkingMs: number | null
  tokensUsed: number | null
  promptTokens: number | null
  /** Tokens generated per second of Ollama's generation time (eval_count over eval_duration), over the turn's model calls. */
  tokensPerSecond: number | null
  doneReason: string | null
  /** What went wrong, for `error` and `interrupted`. */
  error: string | null
  /** Model calls that made tool calls before the answer (docs/tools.md), for a generation that ran. */
  toolSteps?: number
  /** The calls a reply paused for (status `awaiting_approval`). */
  awaiting?: ToolCall[]
}

/**
 * A turn with tools: its tools and limits, and how to ask the model again once a step's calls
 * have their results (the same request with the step's messages added, on the same host).
 */
export interface ToolLoop {
  turn: ToolTurn
  next(added: ChatMessage[], signal: AbortSignal): Promise<ChatStream>
}

/** What a generation relays into: its model, and the stored messages of its turn. */
export interface GenerationDetails {
  model: string
  /** The question it answers (null: a regeneration of a reply that follows none). */
  userMessageId: string | null
  /** The assistant message, already stored as `streaming` (ChatStore.beginTurn). */
  reply: { id: string; createdAt: string }
  /** When the chat was accepted (performance.now()), for its time to first token. */
  acceptedAt: number
  /** The Ollama host generating it, stored with the reply; null when it never started. */
  host: string | null
  /** What of the conversation was sent (docs/long-conversations.md), for the start event. */
  context: Record<string, unknown>
  /** The turn's tools, when it offers the model any. */
  tools?: ToolLoop | undefined
  /** The documents' chunks the turn was given (docs/documents.md), sent as a `sources` event after `start`. */
  sources?: ReplySource[] | undefined
  /** A turn resumed after approvals: its waiting calls, answered, run first; its events go on after `events`. */
  resumed?: ResumedCalls | undefined
  /** A reply continued (docs/api.md "Continuing a cut reply"): the text it starts with, its first token event. */
  prefix?: string | undefined
}

export interface ResumedCalls {
  calls: Array<ToolCall & { decision: ApprovalDecision }>
  /** The events the reply sent before it paused. */
  events: number
}

export interface GenerationSettings {
  store: ReplyStore
  /** Where a reply's sources are recorded when a tool step adds web pages to them. */
  sources: Pick<DocumentStore, 'recordSources'>
  /** Several instances (PostgreSQL): the reply's events go to followers on the others too. */
  cluster: Cluster | null
  log: Logger
  metrics: Metrics
  checkpoints: CheckpointClock
  chatTimeoutMs: number
  /** Where a tool's request for its user's input waits (docs/tools.md "Input for a tool"); absent: such requests are declined. */
  inputs?: { store: InputStore; waiters: InputWaiters; timeoutMs: number } | undefined
  /** The reply's trace (docs/tracing.md): a pause for approvals is an event of it. */
  tracer?: Tracer | undefined
}

/**
 * Why a generation stopped before Ollama's done: a cancel, CHAT_TIMEOUT, shutdown, or its stored
 * row no longer taking writes (changed from outside, e.g. by a second server on the database).
 */
export type StopReason = 'cancelled' | 'timeout' | 'interrupted' | 'unstored'

/** A final write the database refused for a while is tried again after this, doubling up to the max. */
const FINAL_WRITE_RETRY_FIRST_MS = 100
const FINAL_WRITE_RETRY_MAX_MS = 1000

const STOP_ERRORS: Record<Exclude<StopReason, 'cancelled'>, (settings: GenerationSettings) => string> = {
  timeout: (settings) => `The reply took longer than ${formatMs(settings.chatTimeoutMs)} (CHAT_TIMEOUT) and was stopped.`,
  interrupted: () => 'The server shut down before the reply was finished.',
  unstored: () => 'The reply could not be stored.',
}

/**
 * One reply being generated: relays Ollama's stream into the store (checkpoints while tokens
 * flow, the final write at the end) and into its event log, which clients follow. The outcome
 * settles once the reply is stored; `done` is sent only then, and `error` instead when the final
 * write did not land.
 */
export class Generation {
  readonly sessionId: string
  readonly messageId: string
  /** When the reply was stored; a tool step moves it after the step. */
  createdAt: string
  readonly outcome: Promise<GenerationOutcome>
  readonly events: ReplyEventLog
  readonly context: Record<string, unknown>
  readonly sources: ReplySource[]
  /** The Ollama stream being relayed (a turn with tools has one per model call). */
  private stream: ChatStream
  private readonly settings: GenerationSettings
  private readonly model: string
  private readonly tools: ToolLoop | undefined
  /** Stops what runs beside the stream: the tool calls of a step. */
  private readonly stopping = new AbortController()
  /** Where the reply's own text (and reasoning) starts in what was sent: what came before went with a tool step. */
  private stepStart = 0
  /** The text a continued reply started with: not the model's first token. */
  private prefixLength = 0
  private thinkingStepStart = 0
  /** Time spent reasoning so far, and since when the model reasons now (performance.now()). */
  private thinkingMs = 0
  private thinkingSince: number | undefined
  private toolSteps = 0
  private toolStop: ToolStop | null = null
  /** Calls the reply paused for (docs/tools.md: approvals). */
  private awaiting: ToolCall[] | null = null
  /** A turn resumed after its approvals: the calls that waited, each with its answer. */
  private readonly resumed: ResumedCalls | undefined
  /** Output tokens of the model calls before the last one. */
  private earlierEvalCount = 0
  private earlierEvalNs = 0
  /** Text that arrived in a burst after its first piece, sent on the next turn of the event loop. */
  private unsentText = ''
  private unsentType: TextEvent = 'token'
  private flushScheduled = false
  private checkpointTimer: NodeJS.Timeout | undefined
  /** When the oldest text no checkpoint has stored yet arrived (performance.now()). */
  private unsavedSince: number | undefined
  /** What the pending checkpoint's timer was set to. */
  private checkpointDelayMs = 0
  /** The checkpoint being written, if any; the final write waits for it. */
  private checkpointing: Promise<void> | undefined
  private stopReason: StopReason | undefined
  private ended = false
  /** Set when the server stops: the final write is tried once more at most. */
  private lastAttempt = false
  private readonly acceptedAt: number
  private readonly host: string | null

  constructor(
    sessionId: string,
    stream: ChatStream,
    { model, userMessageId, reply, acceptedAt, host, context, tools, resumed, sources = [], prefix = '' }: GenerationDetails,
    settings: GenerationSettings,
    eventLimits: ReplyEventLimits,
    onEnded: () => void,
  ) {
    this.sessionId = sessionId
    this.stream = stream
    this.settings = settings
    this.messageId = reply.id
    this.createdAt = reply.createdAt
    this.acceptedAt = acceptedAt
    this.host = host
    this.context = context
    this.sources = sources
    this.model = model
    this.tools = tools
    this.resumed = resumed
    // Text events differ only in their type and text: the rest of the JSON is built once.
    const textSuffix = `,"session_id":${JSON.stringify(sessionId)}}`
    this.events = new ReplyEventLog(reply.id, (type, text) => '{"type":"' + type + '","content":' + JSON.stringify(text) + textSuffix, eventLimits, settings.cluster?.publisher(reply.id) ?? null, resumed?.events ?? 0)
    this.events.event(JSON.stringify({ type: 'start', session_id: sessionId, message_id: this.messageId, user_message_id: userMessageId, model, context, ...(resumed ? { resumed: true } : {}) }))
    if (sources.length && !resumed) this.events.event(JSON.stringify({ type: 'sources', session_id: sessionId, message_id: this.messageId, sources }))
    // A continued reply's text so far comes first, as its own tokens: every reader (and the stored reply) has the whole text.
    if (prefix) this.events.sendText('token', prefix)
    this.prefixLength = prefix.length
    this.outcome = this.relay().finally(onEnded)
  }

  subscribe(lastEventId: string | null, listener: FrameListener): () => void {
    return this.events.subscribe(lastEventId, listener)
  }

  /** Stops the generation: Ollama's request is aborted through this stream's own iterator. */
  stop(reason: StopReason): void {
    // The shutdown's grace is over: a final write the database keeps refusing is not tried again.
    if (reason === 'interrupted') this.lastAttempt = true
    if (this.ended || this.stopReason) return
    this.stopReason = reason
    this.stream.abort()
    this.stopping.abort()
  }

  /** The whole text so far, sent or not yet. */
  private get allText(): string {
    return this.unsentType === 'token' ? this.events.text + this.unsentText : this.events.text
  }

  /** The whole reasoning so far, sent or not yet. */
  private get allThinking(): string {
    return this.unsentType === 'thinking' ? this.events.thinking + this.unsentText : this.events.thinking
  }

  /** The reply's own text: after the last tool step. */
  private get content(): string {
    return this.allText.slice(this.stepStart)
  }

  /** The reply's own reasoning: after the last tool step. */
  private get thinking(): string {
    return this.allThinking.slice(this.thinkingStepStart)
  }

  /** The model stopped reasoning (it answers, calls tools, or its stream ended): the time is counted. */
  private thoughtUntilNow(): void {
    if (this.thinkingSince === undefined) return
    this.thinkingMs += performance.now() - this.thinkingSince
    this.thinkingSince = undefined
  }

  private async relay(): Promise<GenerationOutcome> {
    const timeout = setTimeout(() => this.stop('timeout'), this.settings.chatTimeoutMs)
    let last: ChatResponse | undefined
    let failure: string | null = null
    try {
      // A resumed turn starts with the calls that waited for approval; its first model call follows.
      if (this.resumed) {
        const next = await this.toolStep(this.tools!, this.resumed.calls, undefined, new Map(this.resumed.calls.map((call) => [call.call_id, call.decision])))
        if (next) this.stream = next
      }
      while (!this.toolStop && !this.awaiting && !this.stopReason) {
        const made: OllamaToolCall[] = []
        last = undefined
        try {
          for await (const chunk of this.stream) {
            // Every chunk may carry text, the done chunk included; a thinking model's reasoning comes first.
            if (chunk.message?.thinking) this.append('thinking', chunk.message.thinking)
            if (chunk.message?.content) this.append('token', chunk.message.content)
            if (chunk.message?.tool_calls?.length) made.push(...chunk.message.tool_calls)
            last = chunk
          }
        } finally {
          // After an error line or a cut, ollama-js leaves the response body open. After `done` there
          // is nothing left to stop, and an abort would only cost a DOMException and the connection.
          if (!last?.done) this.stream.abort()
          this.thoughtUntilNow()
        }
        if (!this.tools || made.length === 0 || !last?.done || this.stopReason) break
        const next = await this.toolStep(this.tools, ToolTurn.callsOf(made), last)
        if (!next) break
        this.stream = next
        // Stopped while the next call was being set up: its stream is not read.
        if (this.stopReason) next.abort()
      }
    } catch (error) {
      failure = this.stopReason ? null : (error as Error).message || String(error)
    } finally {
      clearTimeout(timeout)
      clearTimeout(this.checkpointTimer)
    }
    this.flushTokens()
    // The final write lands after any checkpoint still in flight, never before it.
    await this.checkpointing
    return this.finish(last, failure)
  }

  /**
   * A tool's request for its user's input: stored (any instance may take the answer), sent as
   * `input_required`, then waited for until answered, TOOL_INPUT_TIMEOUT, or the turn's stop
   * (those two answer `cancel`); `input_answered` tells the clients it is over.
   */
  private async askForInput(call: ToolCall, { message, requestedSchema }: InputRequest, signal: AbortSignal): Promise<ToolInputAnswer> {
    const { store, waiters, timeoutMs } = this.settings.inputs!
    const id = randomUUID()
    const now = Date.now()
    const expiresAt = new Date(now + timeoutMs).toISOString()
    await store.askForInput({ id, sessionId: this.sessionId, replyId: this.messageId, callId: call.call_id, message, requestedSchema, createdAt: timestamp(), expiresAt })
    const base = { session_id: this.sessionId, message_id: this.messageId, call_id: call.call_id, name: call.name, input_id: id }
    try {
      this.events.event(JSON.stringify({ type: 'input_required', ...base, message, requested_schema: requestedSchema, expires_at: expiresAt }))
      await waiters.wait(id, timeoutMs, AbortSignal.any([signal, this.stopping.signal]))
      // Read whatever the wait ended on: an answer recorded as it timed out still counts.
      const answer = (await store.inputAnswer(id)) ?? { action: 'cancel' as const }
      this.events.event(JSON.stringify({ type: 'input_answered', ...base, action: answer.action }))
      return answer
    } finally {
      await store.dropInput(id).catch((error: unknown) => this.settings.log.warn('a tool input request could not be removed', { input_id: id, error: (error as Error).message }))
    }
  }

  /**
   * One step of a turn with tools: the calls run (their events sent as they start and end), the
   * step stored before the reply, and the model asked again with it. Null when the turn ends here
   * (a limit, the repeat rule, a stop); the step's text then stays the reply's when no result
   * will be read.
   */
  private async toolStep(tools: ToolLoop, calls: ToolCall[], answered: ChatResponse | undefined, answers?: Map<string, ApprovalDecision>): Promise<ChatStream | null> {
    this.flushTokens()
    clearTimeout(this.checkpointTimer)
    this.checkpointTimer = undefined
    await this.checkpointing
    this.toolSteps++
    this.earlierEvalCount += answered?.eval_count ?? 0
    this.earlierEvalNs += answered?.eval_duration ?? 0
    const base = { session_id: this.sessionId, message_id: this.messageId }
    const outcome = await tools.turn.run(calls, this.stopping.signal, {
      call: (call) => this.events.event(JSON.stringify({ type: 'tool_call', ...base, call_id: call.call_id, name: call.name, arguments: call.arguments })),
      result: (result, durationMs) => this.events.event(JSON.stringify({ type: 'tool_result', ...base, call_id: result.callId, name: result.name, ok: result.ok, content: result.content, duration_ms: durationMs })),
      progress: (call, { progress, total, message }) => this.events.event(JSON.stringify({ type: 'tool_progress', ...base, call_id: call.call_id, name: call.name, progress, ...(total === undefined ? {} : { total }), ...(message ? { message } : {}) })),
      ...(this.settings.inputs ? { input: (call: ToolCall, request: InputRequest, signal: AbortSignal) => this.askForInput(call, request, signal) } : {}),
      // Told once the pause is stored (below): an answer sent at once must find the call waiting.
      approval: () => {},
    }, answers)
    const { stop } = outcome
    let { results, waiting } = outcome
    // Stopped meanwhile: nobody is asked, and what would have waited gets its result now.
    if (waiting.length && this.stopReason) {
      results = [...results, ...waiting.map((call) => ({ callId: call.call_id, name: call.name, content: 'Not run: the turn was stopped before it could be approved.', ok: false }))]
      waiting = []
    }
    // Web pages the step's built-in tools read join the reply's sources, numbered as the model was told.
    const found = results.flatMap((result) => result.sources ?? [])
    if (found.length) {
      this.sources.push(...found)
      this.events.event(JSON.stringify({ type: 'sources', ...base, sources: this.sources }))
    }
    const stepText = this.content
    const stepThinking = this.thinking
    const ends = stop !== null || this.stopReason !== undefined || waiting.length > 0
    // Ending on a limit, the text the model wrote with its calls is the answer it has.
    const keepsText = stop !== null && !this.stopReason
    // The pause's events: one approval_required per waiting call, then done.
    const awaiting = waiting.length
      ? { calls: waiting, turn: JSON.stringify(tools.turn.state(waiting)), expiresAt: new Date(Date.now() + tools.turn.approvalTimeoutMs).toISOString(), events: this.events.eventCount + waiting.length + 1 }
      : undefined
    let movedTo: string | null
    try {
      // A resumed turn's calls are stored already, with the message that made them.
      const made = answers ? undefined : { content: keepsText ? '' : stepText, thinking: keepsText ? '' : stepThinking, model: this.model, toolCalls: calls }
      if (found.length) await this.settings.sources.recordSources(this.messageId, this.sources)
      movedTo = await this.settings.store.addToolStep(this.messageId, { calls: made, results, awaiting })
    } catch (error) {
      this.settings.log.error('tool step could not be stored', { message_id: this.messageId, session_id: this.sessionId, error })
      movedTo = null
    }
    if (movedTo !== null) {
      // Once stored, a result's images can be fetched (GET /v1/attachments/{id}): the page shows them under the call.
      for (const { callId, name, images } of results) {
        if (images?.length) this.events.event(JSON.stringify({ type: 'tool_images', ...base, call_id: callId, name, images: listedImages(images.map(({ id, mediaType, width, height, data }) => ({ id: id!, media_type: mediaType, width, height, bytes: data.byteLength }))) }))
      }
    }
    if (movedTo === null) {
      this.stop('unstored')
      return null
    }
    this.createdAt = movedTo
    if (!keepsText) {
      this.stepStart = this.allText.length
      this.thinkingStepStart = this.allThinking.length
      // The step's text is stored with it.
      this.unsavedSince = undefined
    }
    for (const call of waiting) this.events.event(JSON.stringify({ type: 'approval_required', ...base, call_id: call.call_id, name: call.name, arguments: call.arguments }))
    if (waiting.length) this.settings.tracer?.current()?.addEvent('awaiting approval', { 'chat_ollama.approval.calls': waiting.map((call) => call.name) })
    if (ends) {
      this.toolStop = stop
      if (awaiting) this.awaiting = waiting
      return null
    }
    const added: ChatMessage[] = [
      // The step's reasoning goes back with its calls: the model goes on from it within the turn.
      ...(answers ? [] : [{ role: 'assistant', content: stepText, ...(stepThinking ? { thinking: stepThinking } : {}), tool_calls: ollamaToolCalls(calls) }]),
      ...results.map((result) => ({ role: 'tool', content: result.content, tool_name: result.name })),
    ]
    return tools.next(added, this.stopping.signal)
  }

  private async finish(last: ChatResponse | undefined, failure: string | null): Promise<GenerationOutcome> {
    const stop = this.stopReason
    const status: FinalStatus = this.awaiting
      ? 'awaiting_approval'
      : stop === 'cancelled' ? 'cancelled' : stop === 'interrupted' ? 'interrupted' : stop || failure !== null || !last?.done ? 'error' : 'complete'
    const complete = status === 'complete' && last
    const outcome: GenerationOutcome = {
      status,
      messageId: this.messageId,
      createdAt: this.createdAt,
      content: this.content,
      thinking: this.thinking,
      thinkingMs: this.thinking ? Math.round(this.thinkingMs) : null,
      tokensUsed: complete ? (last.eval_count ?? 0) + this.earlierEvalCount || null : null,
      promptTokens: complete ? (last.prompt_eval_count ?? null) : null,
      tokensPerSecond: complete ? tokensPerSecond((last.eval_count ?? 0) + this.earlierEvalCount, (last.eval_duration ?? 0) + this.earlierEvalNs) : null,
      doneReason: complete ? (this.toolStop ?? (last.done_reason || 'stop')) : status === 'cancelled' || status === 'awaiting_approval' ? status : null,
      toolSteps: this.toolSteps,
      ...(this.awaiting ? { awaiting: this.awaiting } : {}),
      error: stop && stop !== 'cancelled' ? STOP_ERRORS[stop](this.settings) : status === 'error' ? `Ollama failed during the reply: ${failure ?? 'the stream ended early'}` : null,
    }
    // A paused reply was stored as such with its last step.
    if (stop !== 'unstored' && status !== 'awaiting_approval') await this.store(outcome)
    this.settings.metrics.reply(outcome.status, outcome.promptTokens, outcome.tokensUsed)
    if (outcome.thinkingMs !== null) this.settings.metrics.thinking(this.model, outcome.thinkingMs / 1000)
    if (outcome.status === 'complete' || outcome.status === 'cancelled' || outcome.status === 'awaiting_approval') {
      this.events.event(JSON.stringify(doneEventOf(this.sessionId, outcome)))
    } else {
      this.events.event(JSON.stringify({ type: 'error', session_id: this.sessionId, message_id: this.messageId, error: outcome.error }))
    }
    // Ended from here on: a client subscribing now gets the replay and then the end at once.
    this.ended = true
    this.events.end()
    return outcome
  }

  /**
   * The final write, tried again while the database is unavailable (an outage, a terminated
   * connection: the client was sent this text, so it is stored when the database is back); when
   * it does not land, the outcome becomes an error and the log says why.
   */
  private async store(outcome: GenerationOutcome): Promise<void> {
    let why: unknown
    for (let delay = FINAL_WRITE_RETRY_FIRST_MS; ; delay = Math.min(delay * 2, FINAL_WRITE_RETRY_MAX_MS)) {
      try {
        const stored = await this.settings.store.finishReply(this.messageId, {
          content: outcome.content,
          thinking: outcome.thinking,
          thinkingMs: outcome.thinkingMs ?? undefined,
          status: outcome.status,
          tokensUsed: outcome.tokensUsed ?? undefined,
          promptTokens: outcome.promptTokens ?? undefined,
          tokensPerSecond: outcome.tokensPerSecond ?? undefined,
          doneReason: outcome.doneReason ?? undefined,
          host: this.host ?? undefined,
          // Its last event, sent once this is stored, is one more.
          events: this.events.eventCount + 1,
        })
        if (stored) return
        why = 'its row is gone or no longer streaming (changed by another process on this database?)'
        break
      } catch (error) {
        why = error
        if (this.lastAttempt || problemForUnexpected(error).status !== 503) break
        this.settings.log.warn('the final write of a reply failed; writing it again', { message_id: this.messageId, error })
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
    this.settings.log.error('reply could not be stored', { message_id: this.messageId, session_id: this.sessionId, error: why })
    outcome.status = 'error'
    outcome.error = STOP_ERRORS.unstored(this.settings)
    outcome.doneReason = null
  }

  private append(type: TextEvent, piece: string): void {
    if (type === 'thinking') this.thinkingSince ??= performance.now()
    else this.thoughtUntilNow()
    // Text of another type than what waits goes after it.
    if (this.unsentText && this.unsentType !== type) this.flushTokens()
    // The first chunk of a burst leaves at once; chunks that arrive with it follow as one event
    // on the next turn of the event loop: one write per burst, not per chunk.
    if (this.flushScheduled) {
      this.unsentText += piece
      this.unsentType = type
    } else {
      if (this.events.text.length === this.prefixLength && this.events.thinking === '') this.settings.metrics.firstToken((performance.now() - this.acceptedAt) / 1000)
      this.events.sendText(type, piece)
      this.flushScheduled = true
      setImmediate(this.flushTokens)
    }
    this.unsavedSince ??= performance.now()
    if (this.checkpointTimer === undefined) {
      this.checkpointDelayMs = this.settings.checkpoints.delayMs()
      this.checkpointTimer = setTimeout(this.checkpoint, this.checkpointDelayMs)
    }
  }

  private readonly flushTokens = (): void => {
    this.flushScheduled = false
    if (!this.unsentText) return
    const text = this.unsentText
    this.unsentText = ''
    this.events.sendText(this.unsentType, text)
  }

  private readonly checkpoint = (): void => {
    this.checkpointTimer = undefined
    const unsavedSince = this.unsavedSince ?? performance.now()
    this.unsavedSince = undefined
    this.checkpointing = this.saveCheckpoint(unsavedSince, this.checkpointDelayMs)
  }

  private async saveCheckpoint(unsavedSince: number, delayMs: number): Promise<void> {
    let why: unknown
    try {
      if (await this.settings.store.checkpointReply(this.messageId, this.content, this.thinking || null)) {
        const lagMs = performance.now() - unsavedSince
        this.settings.checkpoints.committed(delayMs, lagMs)
        this.settings.metrics.checkpoint(lagMs / 1000)
        return
      }
      why = 'its row is gone or no longer streaming (changed by another process on this database?)'
    } catch (error) {
      // A passing failure (a busy database): the next checkpoint or the final write tries again.
      this.unsavedSince = Math.min(unsavedSince, this.unsavedSince ?? unsavedSince)
      this.settings.log.warn('checkpoint failed', { message_id: this.messageId, error })
      return
    }
    // Nothing this reply writes can land any more: stop asking Ollama for it.
    this.settings.log.error('reply could not be checkpointed', { message_id: this.messageId, session_id: this.sessionId, error: why })
    this.stop('unstored')
  }
}

/** Tokens a second, to a tenth, from a count and Ollama's nanoseconds; null when Ollama reported no time. */
export function tokensPerSecond(tokens: number, ns: number): number | null {
  return tokens > 0 && ns > 0 ? Math.round((tokens / (ns / 1e9)) * 10) / 10 : null
}

/** A reply's `done` event: how it ended, its figures and its reasoning (live, and told again from the store). */
export function doneEventOf(sessionId: string, outcome: GenerationOutcome): Record<string, unknown> {
  return {
    type: 'done',
    session_id: sessionId,
    message_id: outcome.messageId,
    total_tokens: outcome.promptTokens !== null && outcome.tokensUsed !== null ? outcome.promptTokens + outcome.tokensUsed : null,
    prompt_tokens: outcome.promptTokens,
    completion_tokens: outcome.tokensUsed,
    tokens_per_second: outcome.tokensPerSecond,
    done_reason: outcome.doneReason,
    thinking: outcome.thinking || null,
    thinking_ms: outcome.thinkingMs,
  }
}
