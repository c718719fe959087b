import type { ChatResponse, ToolCall as OllamaToolCall } from 'ollama'
import { ollamaToolCalls, type ChatMessage } from '../ollama/client.ts'
import type { ToolCall, ToolResult, WebSource } from '../store/chat-store.ts'
import { TOOL_SEPARATOR } from '../tools/mcp-hub.ts'
import { BUILTIN_SERVER } from '../tools/builtin/builtin-tools.ts'
import { ToolTurn } from '../tools/tool-turn.ts'
import type { Reservation } from '../generation/registry.ts'
import type { Logger } from '../observability/log.ts'
import type { Metrics } from '../observability/metrics.ts'
import { functionCallItemId, newFunctionCall, reasoningItemId, unixSeconds } from './wire.ts'
import { deltaEndsOf, isRunning, segmentsOf, textOf, type DeltaEnds, type Segment } from './response-output.ts'
import type { ChatStream } from '../ollama/client.ts'
import type { ForcedTool } from './forced-tool.ts'
import type { FileSearchResult, FunctionCall, ServerToolItem, ResponseEnd, ResponseStore, StoredResponse } from '../store/response-store.ts'
import { citationsIn } from '../documents/sources.ts'
import { MAX_FOLLOWERS, tooManyFollowers, type EventSource } from '../shared/sse.ts'
import type { ReplyStore } from '../store/reply-store.ts'
import type { StreamPublisher } from '../store/cluster.ts'

/**
 * OpenAI's Response objects and stream events, and a response being generated.
 *
 * The events of a response are a function of its state: 0 `response.created`, 1
 * `response.in_progress`, then a reasoning model's reasoning item (`output_item.added`,
 * `content_part.added`, one `reasoning_text.delta` per chunk of thinking, and once something
 * follows it `reasoning_text.done`, `content_part.done`, `output_item.done`), then (once there is
 * output) `output_item.added`, `content_part.added`,
 * one `output_text.delta` per chunk Ollama sent, and at the end `output_text.done`,
 * `content_part.done`, `output_item.done`, four events per function call the model made
 * (`output_item.added`, `function_call_arguments.delta` and `.done`, `output_item.done`), and the
 * terminal event (`response.completed`, `response.incomplete`, or `response.failed`, also for a
 * cancelled response). So a replay, from memory while it runs or from the store after it ended
 * (after a restart too), carries the same events under the same sequence numbers, and nothing but
 * the text, the deltas' lengths and the calls is kept.
 */

type Event = Record<string, unknown> & { type: string; sequence_number: number }

const messageIdOf = (responseId: string) => `msg_${responseId.slice(responseId.indexOf('_') + 1)}`

const usageOf = (usage: StoredResponse['usage']) =>
  usage && {
    input_tokens: usage.input_tokens,
    input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    output_tokens: usage.output_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.input_tokens + usage.output_tokens,
  }


/**
 * A server tool's item as OpenAI shows it: the id of its call in the model's history and its place
 * in the text are ours; a file search's results show when `include` asks for them, once it is done.
 */
function toolItemObject(response: StoredResponse, item: ServerToolItem, done = true) {
  if (item.type === 'web_search_call') {
    const action = item.action.type === 'search' ? { ...item.action, sources: done ? item.sources.map((source) => ({ type: 'url', url: source.url })) : [] } : item.action
    return { id: item.id, type: item.type, status: !done ? 'in_progress' : item.ok ? 'completed' : 'failed', action }
  }
  if (item.type === 'code_interpreter_call') {
    // Each call runs in an interpreter of its own: its "container" lives as long as the call.
    const outputs = done ? [{ type: 'logs', logs: item.output }] : null
    return { id: item.id, type: item.type, status: !done ? 'in_progress' : item.ok ? 'completed' : 'failed', code: item.code, container_id: `cntr_${item.call_id.slice(item.call_id.indexOf('_') + 1)}`, outputs }
  }
  if (item.type === 'file_search_call') {
    const results = done && response.params.include?.includes('file_search_call.results') ? item.results : null
    return { id: item.id, type: item.type, status: done ? 'completed' : 'in_progress', queries: item.queries, results }
  }
  if (item.type === 'mcp_list_tools') {
    const { at: _, ...shown } = item
    return shown
  }
  const { call_id: _, at: __, ...shown } = item
  return shown
}

/** The sources a response's file searches gave the model, in the order they are numbered for [n]. */
const fileSearchSources = (response: StoredResponse): FileSearchResult[] =>
  response.mcp_items.flatMap((item) => (item.type === 'file_search_call' ? item.results : []))

/** Every source of a response by its number: a file search's chunks first, then the web pages its built-in tools read. */
function sourcesByNumber(response: StoredResponse): Map<number, FileSearchResult | WebSource> {
  const numbered = new Map<number, FileSearchResult | WebSource>(fileSearchSources(response).map((source, index) => [index + 1, source]))
  for (const item of response.mcp_items) if (item.type === 'web_search_call') for (const source of item.sources) numbered.set(source.n, source)
  return numbered
}

/**
 * OpenAI's annotations of a message's text, one per [n] marker of a source: `file_citation` at
 * the marker for a file search's chunk, `url_citation` over the marker for a web page.
 */
function annotationsOf(response: StoredResponse, text: string) {
  const sources = sourcesByNumber(response)
  if (sources.size === 0) return []
  type Annotation = { type: 'url_citation'; url: string; title: string; start_index: number; end_index: number } | { type: 'file_citation'; file_id: string; filename: string; index: number }
  return citationsIn(text, Math.max(...sources.keys())).flatMap(({ n, index, end }): Annotation[] => {
    const source = sources.get(n)
    if (!source) return []
    return 'url' in source
      ? [{ type: 'url_citation', url: source.url, title: source.title, start_index: index, end_index: end }]
      : [{ type: 'file_citation', file_id: source.file_id, filename: source.filename, index }]
  })
}

/** A closed message's annotations (an open one has none yet); no text is sliced for a response without sources. */
const messageAnnotations = (response: StoredResponse, segment: Extract<Segment, { kind: 'message' }>, ends: () => number[]) =>
  segment.closed && hasSources(response) ? annotationsOf(response, textOf(response, segment, ends())) : []
const hasSources = (response: StoredResponse) => response.mcp_items.some((item) => (item.type === 'file_search_call' && item.results.length > 0) || (item.type === 'web_search_call' && item.sources.length > 0))

/** The first message of a response is `msg_<its hex>`; one after MCP items adds its place. */
const messageItemId = (responseId: string, index: number) => (index === 0 ? messageIdOf(responseId) : `${messageIdOf(responseId)}_${index}`)

function messageItem(response: StoredResponse, segment: Extract<Segment, { kind: 'message' }>, ends: number[], done: boolean) {
  // One that MCP items followed was whole; the last one is as the response ended.
  const status = !done ? 'in_progress' : !isRunning(response) && segment.to === response.deltas.length && response.status !== 'completed' ? 'incomplete' : 'completed'
  return {
    id: messageItemId(response.id, segment.index),
    type: 'message',
    status,
    role: 'assistant',
    content: done ? [outputText(response, textOf(response, segment, ends))] : [],
  }
}

const outputText = (response: StoredResponse, text: string) => ({ type: 'output_text', text, annotations: annotationsOf(response, text), logprobs: [] })

function reasoningItem(response: StoredResponse, done: boolean) {
  const status = !done ? 'in_progress' : !isRunning(response) && response.status !== 'completed' && response.deltas.length === 0 ? 'incomplete' : 'completed'
  return { id: reasoningItemId(response.id), type: 'reasoning', status, summary: [], content: done ? [{ type: 'reasoning_text', text: response.reasoning!.text }] : [] }
}

function functionCallItem(response: StoredResponse, index: number, done: boolean) {
  const call = response.tool_calls[index]!
  return { id: functionCallItemId(response.id, index), type: 'function_call', status: done ? 'completed' : 'in_progress', call_id: call.call_id, name: call.name, arguments: done ? call.arguments : '' }
}

/** The output items of an ended response: its messages and MCP items in order, then its function calls. */
function outputItems(response: StoredResponse) {
  const ends = deltaEndsOf(response).text
  return [
    ...segmentsOf(response).map((segment) => (segment.kind === 'message' ? messageItem(response, segment, ends, true) : segment.kind === 'reasoning' ? reasoningItem(response, true) : toolItemObject(response, segment.item))),
    ...response.tool_calls.map((_, index) => functionCallItem(response, index, true)),
  ]
}

/** The Response object as OpenAI's API gives it. */
export function responseObject(response: StoredResponse, { asStarted = false }: { asStarted?: boolean } = {}) {
  const started = asStarted && !isRunning(response) ? { ...response, status: 'in_progress' as const } : response
  const ended = !isRunning(started)
  return {
    id: response.id,
    object: 'response',
    created_at: unixSeconds(response.created_at),
    status: started.status,
    background: response.background,
    error: ended && response.error ? response.error : null,
    incomplete_details: ended && response.incomplete_reason ? { reason: response.incomplete_reason } : null,
    instructions: response.instructions,
    max_output_tokens: response.params.max_output_tokens,
    metadata: response.params.metadata,
    model: response.model,
    output: ended ? outputItems(response) : [],
    parallel_tool_calls: true,
    previous_response_id: response.previous_response_id,
    store: response.params.store,
    temperature: response.params.temperature,
    text: { format: response.params.text_format },
    tool_choice: response.params.tool_choice ?? 'auto',
    tools: response.params.tools ?? [],
    top_p: response.params.top_p,
    truncation: response.params.truncation ?? 'disabled',
    reasoning: { effort: response.params.reasoning_effort ?? null, summary: null },
    usage: ended ? usageOf(response.usage) : null,
    conversation: response.session_id ? { id: conversationIdOf(response.session_id) } : null,
    completed_at: response.completed_at ? unixSeconds(response.completed_at) : null,
  }
}

/** A conversation's id is its session's, as OpenAI spells ids: `conv_` and the UUID's hex. */
export const conversationIdOf = (sessionId: string) => `conv_${sessionId.replaceAll('-', '')}`

/** The session of a conversation id, or undefined for anything that is not one. */
export function sessionIdOf(conversationId: string): string | undefined {
  const hex = /^conv_([0-9a-f]{32})$/.exec(conversationId)?.[1]
  return hex && `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Events per function call: output_item.added, function_call_arguments.delta and .done, output_item.done. */
const EVENTS_PER_CALL = 4
/**
 * Events of a message: output_item.added, content_part.added, its deltas, and once closed one
 * output_text.annotation.added per citation, output_text.done, content_part.done, output_item.done.
 */
const messageEvents = (response: StoredResponse, segment: Extract<Segment, { kind: 'message' }>, ends: () => number[]) =>
  2 + segment.to - segment.from + (segment.closed ? 3 + messageAnnotations(response, segment, ends).length : 0)
/**
 * Events of a server tool's item, sent together once it is whole: output_item.added and .done;
 * between them a file search's and a web search's `.in_progress`, `.searching` and `.completed`,
 * and a code interpreter call's `.in_progress`, its code (`code_interpreter_call_code.delta` and
 * `.done`), `.interpreting` and `.completed`.
 */
function toolItemSteps(item: ServerToolItem): Array<Record<string, unknown> & { type: string }> {
  const ofItem = (type: string, extra: Record<string, unknown> = {}) => ({ type, item_id: item.id, ...extra })
  switch (item.type) {
    case 'file_search_call':
      return ['in_progress', 'searching', 'completed'].map((step) => ofItem(`response.file_search_call.${step}`))
    case 'web_search_call':
      return ['in_progress', 'searching', 'completed'].map((step) => ofItem(`response.web_search_call.${step}`))
    case 'code_interpreter_call':
      return [
        ofItem('response.code_interpreter_call.in_progress'),
        ofItem('response.code_interpreter_call_code.delta', { delta: item.code }),
        ofItem('response.code_interpreter_call_code.done', { code: item.code }),
        ofItem('response.code_interpreter_call.interpreting'),
        ofItem('response.code_interpreter_call.completed'),
      ]
    default:
      return []
  }
}
/** Items that are in progress when added (the others go out whole in both events). */
const STEPPED_ITEMS = new Set<ServerToolItem['type']>(['file_search_call', 'web_search_call', 'code_interpreter_call'])
const toolItemEvents = (item: ServerToolItem) => 2 + (STEPPED_ITEMS.has(item.type) ? toolItemSteps(item).length : 0)
/** Events of the reasoning: as a message's, its deltas the reasoning's. */
const reasoningEvents = (response: StoredResponse, segment: Extract<Segment, { kind: 'reasoning' }>) => 2 + response.reasoning!.deltas.length + (segment.closed ? 3 : 0)

const segmentEvents = (response: StoredResponse, segment: Segment, ends: () => number[]) =>
  segment.kind === 'message' ? messageEvents(response, segment, ends) : segment.kind === 'reasoning' ? reasoningEvents(response, segment) : toolItemEvents(segment.item)

/** How many events the response has so far. */
export function eventCount(response: StoredResponse): number {
  let ends: number[] | undefined
  const textEnds = () => (ends ??= deltaEndsOf(response).text)
  const output = segmentsOf(response).reduce((sum, segment) => sum + segmentEvents(response, segment, textEnds), 0)
  return 2 + output + (isRunning(response) ? 0 : EVENTS_PER_CALL * response.tool_calls.length + 1)
}

/** Event `seq` of the response (0-based, below eventCount); `deltaEnds` are the deltas' cumulative ends in the text and the reasoning. */
export function eventAt(response: StoredResponse, seq: number, deltaEnds: DeltaEnds): Event {
  const ends = deltaEnds.text
  const at = (event: Record<string, unknown> & { type: string }): Event => ({ ...event, sequence_number: seq })
  // As it was when it started, also when replayed after it ended.
  const started = () => ({ ...responseObject(response, { asStarted: true }), status: 'in_progress', output: [], usage: null, error: null, incomplete_details: null, completed_at: null })
  if (seq === 0) return at({ type: 'response.created', response: started() })
  if (seq === 1) return at({ type: 'response.in_progress', response: started() })
  const segments = segmentsOf(response)
  let first = 2
  for (const [outputIndex, segment] of segments.entries()) {
    if (segment.kind === 'mcp') {
      const count = toolItemEvents(segment.item)
      if (seq >= first + count) {
        first += count
        continue
      }
      const offset = seq - first
      // An MCP item goes out whole in both events; a file search and a built-in tool's call are in progress when added.
      if (offset === 0) return at({ type: 'response.output_item.added', output_index: outputIndex, item: toolItemObject(response, segment.item, !STEPPED_ITEMS.has(segment.item.type)) })
      if (offset === count - 1) return at({ type: 'response.output_item.done', output_index: outputIndex, item: toolItemObject(response, segment.item) })
      return at({ ...toolItemSteps(segment.item)[offset - 1]!, output_index: outputIndex })
    }
    const count = segmentEvents(response, segment, () => ends)
    if (seq >= first + count) {
      first += count
      continue
    }
    const offset = seq - first
    if (segment.kind === 'reasoning') return at(reasoningEvent(response, outputIndex, offset, deltaEnds.reasoning))
    const deltas = segment.to - segment.from
    const text = { item_id: messageItemId(response.id, segment.index), output_index: outputIndex, content_index: 0 }
    if (offset === 0) return at({ type: 'response.output_item.added', output_index: outputIndex, item: messageItem(response, segment, ends, false) })
    if (offset === 1) return at({ type: 'response.content_part.added', ...text, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } })
    if (offset < 2 + deltas) {
      const index = segment.from + offset - 2
      return at({ type: 'response.output_text.delta', ...text, delta: response.output_text.slice(index === 0 ? 0 : ends[index - 1], ends[index]), logprobs: [] })
    }
    const whole = textOf(response, segment, ends)
    const annotations = annotationsOf(response, whole)
    const afterDeltas = offset - 2 - deltas
    if (afterDeltas < annotations.length) return at({ type: 'response.output_text.annotation.added', ...text, annotation_index: afterDeltas, annotation: annotations[afterDeltas] })
    const afterAnnotations = afterDeltas - annotations.length
    if (afterAnnotations === 0) return at({ type: 'response.output_text.done', ...text, text: whole, logprobs: [] })
    if (afterAnnotations === 1) return at({ type: 'response.content_part.done', ...text, part: outputText(response, whole) })
    return at({ type: 'response.output_item.done', output_index: outputIndex, item: messageItem(response, segment, ends, true) })
  }
  const callIndex = Math.floor((seq - first) / EVENTS_PER_CALL)
  if (callIndex < response.tool_calls.length) {
    const outputIndex = segments.length + callIndex
    const call = functionCallItem(response, callIndex, true)
    const ofItem = { item_id: call.id, output_index: outputIndex }
    switch ((seq - first) % EVENTS_PER_CALL) {
      case 0: return at({ type: 'response.output_item.added', output_index: outputIndex, item: functionCallItem(response, callIndex, false) })
      case 1: return at({ type: 'response.function_call_arguments.delta', ...ofItem, delta: call.arguments })
      case 2: return at({ type: 'response.function_call_arguments.done', ...ofItem, name: call.name, arguments: call.arguments })
      default: return at({ type: 'response.output_item.done', output_index: outputIndex, item: call })
    }
  }
  const type = response.status === 'completed' ? 'response.completed' : response.status === 'incomplete' ? 'response.incomplete' : 'response.failed'
  return at({ type, response: responseObject(response) })
}


/** Event `offset` of the reasoning item at `outputIndex` (OpenAI's `reasoning_text` events, as for gpt-oss). */
function reasoningEvent(response: StoredResponse, outputIndex: number, offset: number, ends: number[]): Record<string, unknown> & { type: string } {
  const { text, deltas } = response.reasoning!
  const part = { item_id: reasoningItemId(response.id), output_index: outputIndex, content_index: 0 }
  if (offset === 0) return { type: 'response.output_item.added', output_index: outputIndex, item: reasoningItem(response, false) }
  if (offset === 1) return { type: 'response.content_part.added', ...part, part: { type: 'reasoning_text', text: '' } }
  if (offset < 2 + deltas.length) {
    const index = offset - 2
    return { type: 'response.reasoning_text.delta', ...part, delta: text.slice(index === 0 ? 0 : ends[index - 1], ends[index]) }
  }
  const afterDeltas = offset - 2 - deltas.length
  if (afterDeltas === 0) return { type: 'response.reasoning_text.done', ...part, text }
  if (afterDeltas === 1) return { type: 'response.content_part.done', ...part, part: { type: 'reasoning_text', text } }
  return { type: 'response.output_item.done', output_index: outputIndex, item: reasoningItem(response, true) }
}

/** Receives each event in order, then null once the response has ended. */
export type ResponseListener = (event: Event | null) => void

export interface ResponseRunDeps {
  /** Null for `store: false`: nothing is written. */
  responses: ResponseStore | null
  /** With the assistant message it writes into, for a response in a conversation. */
  conversation: { store: ReplyStore; replyId: string; host: string } | null
  log: Logger
  metrics: Metrics
  checkpointIntervalMs: number
  chatTimeoutMs: number
  acceptedAt: number
  /** Several instances (PostgreSQL): the events go to followers on the others too. */
  publisher: StreamPublisher | null
  /** The `mcp` tools it offers (docs/tools.md): the model's calls of them run here. */
  mcp?: McpRun | undefined
  /** A call tool_choice forces (lib/openai/forced-tool.ts): the model's JSON answer is that call, not text. */
  forced?: ForcedTool | undefined
}

/** A response's MCP tools: the turn that runs their calls, and how to ask the model again with a step's results. */
export interface McpRun {
  turn: ToolTurn
  /** The server label each configured server is named by in this response. */
  labels: Map<string, string>
  next(added: ChatMessage[], signal: AbortSignal): Promise<ChatStream>
}

type StopReason = 'cancelled' | 'interrupted'

/**
 * One response being generated: relays Ollama's chunks into its text (checkpointed like a
 * chat's), stores its end, and serves its events to followers. The terminal event goes out only
 * once the end is stored.
 */
export class ResponseRun {
  readonly record: StoredResponse
  readonly outcome: Promise<StoredResponse>
  private readonly deps: ResponseRunDeps
  private readonly listeners = new Map<ResponseListener, number>()
  private readonly ends: DeltaEnds = { text: [], reasoning: [] }
  /** Events handed to the publisher so far. */
  private published = 0
  private readonly toolCalls: FunctionCall[] = []
  /** Stops the MCP calls running beside the stream. */
  private readonly stopping = new AbortController()
  private stream: ChatStream
  private stopReason: StopReason | 'timeout' | undefined
  private checkpointTimer: NodeJS.Timeout | undefined
  /** The checkpoint being written, if any; the end waits for it. */
  private checkpointing: Promise<void> | undefined
  /** A forced call's JSON as it comes: it becomes the call at the end (forcedCall). */
  private forcedJson = ''
  /** The reasoning of the model call being read: it goes back with that call's MCP calls (mcpStep). */
  private stepThinking = ''

  constructor(record: StoredResponse, stream: ChatStream, deps: ResponseRunDeps) {
    this.record = record
    this.stream = stream
    this.deps = deps
    record.status = 'in_progress'
    this.outcome = this.relay()
  }

  /** Replays the events after `after` (-1: all), then follows; returns the detach. Throws 429 past the follower cap. */
  subscribe(after: number, listener: ResponseListener): () => void {
    if (isRunning(this.record) && this.listeners.size >= MAX_FOLLOWERS) throw tooManyFollowers(MAX_FOLLOWERS)
    let next = after + 1
    for (const count = eventCount(this.record); next < count; next++) listener(eventAt(this.record, next, this.ends))
    if (!isRunning(this.record)) {
      listener(null)
      return () => {}
    }
    this.listeners.set(listener, next)
    return () => this.listeners.delete(listener)
  }

  stop(reason: StopReason): void {
    if (!isRunning(this.record) || this.stopReason) return
    this.stopReason = reason
    this.stream.abort()
    this.stopping.abort()
  }

  private publish(): void {
    const count = eventCount(this.record)
    const { publisher } = this.deps
    if (publisher) {
      for (; this.published < count; this.published++) publisher.push(this.published, eventFrame(eventAt(this.record, this.published, this.ends)))
    }
    for (const [listener, next] of this.listeners) {
      for (let seq = next; seq < count; seq++) listener(eventAt(this.record, seq, this.ends))
      this.listeners.set(listener, count)
    }
  }

  private async relay(): Promise<StoredResponse> {
    // response.created and response.in_progress reach other instances' followers before any text.
    this.publish()
    const timeout = setTimeout(() => {
      this.stopReason ??= 'timeout'
      this.stream.abort()
      this.stopping.abort()
    }, this.deps.chatTimeoutMs)
    let last: ChatResponse | undefined
    let failure: string | null = null
    const { mcp } = this.deps
    try {
      for (;;) {
        const mcpCalls: OllamaToolCall[] = []
        last = undefined
        this.stepThinking = ''
        try {
          for await (const chunk of this.stream) {
            const thought = chunk.message?.thinking
            if (thought) this.think(thought)
            // Ollama sends a call whole, in the chunks before done; its events go out at the end.
            for (const call of chunk.message?.tool_calls ?? []) {
              if (mcp) mcpCalls.push(call)
              else this.toolCalls.push(newFunctionCall(call.function.name, call.function.arguments))
            }
            const piece = chunk.message?.content
            if (piece && this.deps.forced) {
              if (!this.forcedJson && this.ends.reasoning.length === 0) this.deps.metrics.firstToken((performance.now() - this.deps.acceptedAt) / 1000)
              this.forcedJson += piece
            } else if (piece) {
              if (this.ends.text.length === 0 && this.ends.reasoning.length === 0) this.deps.metrics.firstToken((performance.now() - this.deps.acceptedAt) / 1000)
              this.record.output_text += piece
              this.record.deltas.push(piece.length)
              this.ends.text.push(this.record.output_text.length)
              this.checkpointTimer ??= setTimeout(this.checkpoint, this.deps.checkpointIntervalMs)
              this.publish()
            }
            last = chunk
          }
        } finally {
          if (!last?.done) this.stream.abort()
        }
        if (this.deps.forced && last?.done && !this.stopReason) this.forcedCall(this.deps.forced, last)
        if (!mcp || mcpCalls.length === 0 || !last?.done || this.stopReason) break
        const next = await this.mcpStep(mcp, ToolTurn.callsOf(mcpCalls))
        if (!next) break
        this.stream = next
        if (this.stopReason) next.abort()
      }
    } catch (error) {
      if (!this.stopReason) failure = (error as Error).message || String(error)
    } finally {
      clearTimeout(timeout)
      clearTimeout(this.checkpointTimer)
    }
    // The end is written after any checkpoint still in flight, never before it.
    await this.checkpointing
    await this.finish(this.endOf(last, failure))
    return this.record
  }

  /** The forced call from the model's JSON; cut short by max_output_tokens, the JSON stays as text (incomplete). */
  private forcedCall(forced: ForcedTool, last: ChatResponse): void {
    const call = forced.callOf(this.forcedJson)
    if (call) {
      this.toolCalls.push(newFunctionCall(call.name, call.arguments))
      return
    }
    if (last.done_reason !== 'length') throw new Error('the model did not answer with a call of the function tool_choice asks for')
    this.record.output_text = this.forcedJson
    this.record.deltas.push(this.forcedJson.length)
    this.ends.text.push(this.forcedJson.length)
  }

  /**
   * Reasoning: kept as the response's reasoning item while nothing else has come out since it
   * began (it is an output item before what it led to); a later call's, after text, goes with its
   * step only.
   */
  private think(piece: string): void {
    this.stepThinking += piece
    const record = this.record
    if (record.deltas.length > 0 || (record.reasoning && record.mcp_items.length > record.reasoning.at)) return
    if (this.ends.text.length === 0 && this.ends.reasoning.length === 0) this.deps.metrics.firstToken((performance.now() - this.deps.acceptedAt) / 1000)
    record.reasoning ??= { text: '', deltas: [], at: record.mcp_items.length }
    record.reasoning.text += piece
    record.reasoning.deltas.push(piece.length)
    this.ends.reasoning.push(record.reasoning.text.length)
    this.checkpointTimer ??= setTimeout(this.checkpoint, this.deps.checkpointIntervalMs)
    this.publish()
  }

  /**
   * The model's calls of MCP tools: those that need no approval run (at most 4 at once, within
   * the turn's limits), each an `mcp_call`; those that do become `mcp_approval_request`s and the
   * response ends with them, for the client to answer in its next response. The next stream, or
   * null when the response ends here.
   */
  private async mcpStep(mcp: McpRun, calls: ToolCall[]): Promise<ChatStream | null> {
    const byId = new Map(calls.map((call) => [call.call_id, call]))
    // Each item goes out as it is whole: a call's when it has ended, after the text so far.
    const add = (item: ServerToolItem) => {
      this.record.mcp_items.push(item)
      this.publish()
    }
    const at = this.record.deltas.length
    const { results, stop } = await mcp.turn.run(calls, this.stopping.signal, {
      call() {},
      result: (result) => add(serverToolItem(mcp, byId.get(result.callId)!, result, null, at)),
      approval: (call) => {
        const [label, name] = mcpNameOf(mcp.labels, call.name)
        add({ type: 'mcp_approval_request', id: approvalIdOf(call.call_id), call_id: call.call_id, server_label: label, name, arguments: JSON.stringify(call.arguments), at })
      },
    })
    if (this.record.mcp_items.some((item) => item.type === 'mcp_approval_request' && byId.has(item.call_id)) || stop || this.stopReason) return null
    return mcp.next([
      // The step's reasoning goes back with its calls: the model goes on from it within the turn.
      { role: 'assistant', content: '', ...(this.stepThinking ? { thinking: this.stepThinking } : {}), tool_calls: ollamaToolCalls(calls) },
      ...results.map((result) => ({ role: 'tool', content: result.content, tool_name: result.name })),
    ], this.stopping.signal)
  }

  private endOf(last: ChatResponse | undefined, failure: string | null): ResponseEnd {
    const { output_text: outputText, deltas } = this.record
    const usage = last?.done ? { input_tokens: last.prompt_eval_count ?? 0, output_tokens: last.eval_count ?? 0 } : null
    // Calls of a reply that did not end well are not offered: their arguments may be cut short.
    const base = { outputText, deltas, toolCalls: [], mcpItems: this.record.mcp_items, reasoning: this.record.reasoning, usage, incompleteReason: null, error: null }
    if (this.stopReason === 'cancelled') return { ...base, status: 'cancelled', usage: null }
    if (this.stopReason === 'interrupted') return { ...base, status: 'failed', usage: null, error: { code: 'server_error', message: 'The server shut down before the response was finished.' } }
    if (this.stopReason === 'timeout') return { ...base, status: 'failed', usage: null, error: { code: 'server_error', message: 'The response took longer than CHAT_TIMEOUT and was stopped.' } }
    if (failure !== null || !last?.done) {
      return { ...base, status: 'failed', usage: null, error: { code: 'server_error', message: `Ollama failed during the response: ${failure ?? 'the stream ended early'}` } }
    }
    if (last.done_reason === 'length') return { ...base, status: 'incomplete', incompleteReason: 'max_output_tokens' }
    return { ...base, status: 'completed', toolCalls: this.toolCalls }
  }

  private async finish(end: ResponseEnd): Promise<void> {
    // The status a chat reply would be stored with: the conversation's message, and the metrics.
    const status = end.status === 'completed' || end.status === 'incomplete' ? 'complete' : end.status === 'cancelled' ? 'cancelled' : 'error'
    try {
      await this.deps.responses?.finish(this.record.id, end)
      const conversation = this.deps.conversation
      if (conversation) {
        await conversation.store.finishReply(conversation.replyId, {
          content: end.outputText,
          thinking: end.reasoning?.text,
          status,
          tokensUsed: end.usage?.output_tokens,
          promptTokens: end.usage?.input_tokens,
          doneReason: end.status === 'incomplete' ? 'length' : end.status === 'cancelled' ? 'cancelled' : status === 'complete' ? 'stop' : undefined,
          host: conversation.host,
        })
      }
    } catch (error) {
      this.deps.log.error('response could not be stored', { response_id: this.record.id, error })
      end = { ...end, status: 'failed', toolCalls: [], error: { code: 'server_error', message: 'The response could not be stored.' } }
    }
    Object.assign(this.record, {
      status: end.status,
      tool_calls: end.toolCalls,
      mcp_items: end.mcpItems,
      usage: end.usage,
      incomplete_reason: end.incompleteReason,
      error: end.error,
      completed_at: new Date().toISOString(),
    })
    this.deps.metrics.reply(end.status === 'failed' ? 'error' : status, end.usage?.input_tokens ?? null, end.usage?.output_tokens ?? null)
    this.publish()
    this.deps.publisher?.end()
    for (const listener of this.listeners.keys()) listener(null)
    this.listeners.clear()
  }

  private readonly checkpoint = (): void => {
    this.checkpointTimer = undefined
    this.checkpointing = this.saveCheckpoint()
  }

  private async saveCheckpoint(): Promise<void> {
    try {
      await this.deps.responses?.checkpoint(this.record.id, this.record.output_text, this.record.deltas, this.record.mcp_items, this.record.reasoning)
      if (this.deps.conversation) await this.deps.conversation.store.checkpointReply(this.deps.conversation.replyId, this.record.output_text, this.record.reasoning?.text ?? null)
    } catch (error) {
      this.deps.log.warn('response checkpoint failed', { response_id: this.record.id, error })
    }
  }
}

/** The approval request of a call: `mcpr_` and the call's hex. */
export const approvalIdOf = (callId: string) => `mcpr_${callId.slice(callId.indexOf('_') + 1)}`

/** A `SERVER__TOOL` name as the response names it: the server's label, and the bare tool name. */
function mcpNameOf(labels: Map<string, string>, name: string): [string, string] {
  const separator = name.indexOf(TOOL_SEPARATOR)
  const server = separator < 0 ? '' : name.slice(0, separator)
  return [labels.get(server) ?? server, separator < 0 ? name : name.slice(separator + TOOL_SEPARATOR.length)]
}

/**
 * The item of a call and its result: a built-in tool's `web_search_call` or
 * `code_interpreter_call`, else an `mcp_call` (`approvalId`: the request it was approved by).
 */
export function serverToolItem(mcp: Pick<McpRun, 'turn' | 'labels'>, call: ToolCall, result: ToolResult, approvalId: string | null, at: number): ServerToolItem {
  const hex = call.call_id.slice(call.call_id.indexOf('_') + 1)
  if (mcp.turn.tools.get(call.name)?.server === BUILTIN_SERVER) {
    const ran = { call_id: call.call_id, name: call.name, arguments: JSON.stringify(call.arguments), output: result.content, ok: result.ok, at }
    if (call.name === 'run_python') return { type: 'code_interpreter_call', id: `ci_${hex}`, code: String(call.arguments.code ?? ''), ...ran }
    const action = call.name === 'fetch_url' ? { type: 'open_page' as const, url: String(call.arguments.url ?? '') } : { type: 'search' as const, query: String(call.arguments.query ?? '') }
    return { type: 'web_search_call', id: `ws_${hex}`, action, sources: result.sources ?? [], ...ran }
  }
  return mcpCallItem(mcp.labels, call, result, approvalId, at)
}

/** An `mcp_call` item for a call and its result (`approvalId`: the request it was approved by). */
function mcpCallItem(labels: Map<string, string>, call: ToolCall, result: ToolResult, approvalId: string | null, at: number): ServerToolItem {
  const [label, name] = mcpNameOf(labels, call.name)
  return {
    at,
    type: 'mcp_call',
    id: `mcp_${call.call_id.slice(call.call_id.indexOf('_') + 1)}`,
    call_id: call.call_id,
    server_label: label,
    name,
    arguments: JSON.stringify(call.arguments),
    output: result.ok ? result.content : null,
    error: result.ok ? null : result.content,
    approval_request_id: approvalId,
  }
}

/** A response accepted and not yet ended: its slot, and its run once Ollama answered. */
export interface RunningResponse {
  reservation: Reservation
  /** The run, once Ollama answered. */
  readonly run: ResponseRun | undefined
  /** Settles once Ollama answered (the run), or rejects when it could not start. */
  started: Promise<ResponseRun>
  /** Settles once the response has ended and its end is stored (or it failed to start). */
  settled: Promise<unknown>
}

const encoder = new TextEncoder()

/** An event as OpenAI's streams send it: its type in `event:`, the event in `data:`. */
export const eventFrame = (event: Event): string => `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

/**
 * A response's events after `after` (-1: all; OpenAI's `starting_after`) as SSE frames with
 * OpenAI's `event:` and `data:` lines, for lib/shared/sse.ts to serve (with its heartbeat): from the run
 * while it runs, from the stored record once it has ended.
 */
export function responseEvents(source: ResponseRun | StoredResponse, after: number): EventSource {
  return {
    subscribe(_lastEventId, listener) {
      const send = (event: Event | null) => listener(event && encoder.encode(eventFrame(event)))
      if (source instanceof ResponseRun) return source.subscribe(after, send)
      const ends = deltaEndsOf(source)
      for (let seq = after + 1, count = eventCount(source); seq < count; seq++) send(eventAt(source, seq, ends))
      send(null)
      return () => {}
    },
  }
}

/** The responses running in this server, by id. */
export class ResponseRegistry {
  private readonly running = new Map<string, RunningResponse>()

  add(id: string, entry: RunningResponse): void {
    this.running.set(id, entry)
    void entry.settled.finally(() => this.running.delete(id))
  }

  get(id: string): RunningResponse | undefined {
    return this.running.get(id)
  }
}
