import { randomUUID } from 'node:crypto'
import type { CallToolResult } from '@modelcontextprotocol/client'
import type { Tool as OllamaTool, ToolCall as OllamaToolCall } from 'ollama'
import type { Logger } from '../observability/log.ts'
import type { Tracer } from '../observability/tracing.ts'
import type { Metrics } from '../observability/metrics.ts'
import { formatMs } from '../ollama/client.ts'
import type { ChatOptions, Think } from '../shared/chat-options.ts'
import type { ApprovalDecision, NewImage, ToolCall, ToolResult, WebSource } from '../store/chat-store.ts'
import type { ChatStore } from '../store/store.ts'
import type { CallHandlers, InputRequest, McpHub, OfferedTool } from './mcp-hub.ts'
import type { ToolInputAnswer } from '../store/input-store.ts'
import { BUILTIN_SERVER, webSourcesText } from './builtin/builtin-tools.ts'
import { SCHEMA_CHECK_TIMEOUT_MS } from './argument-check.ts'
import type { OllamaPool } from '../ollama/pool.ts'
import type { Config } from '../shared/config.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { ImageGate } from '../images/image-gate.ts'
import { prepareImage, type PreparedImage } from '../images/image-input.ts'
import { base64Bytes, base64Size } from '../images/image-text.ts'

/** Tool calls one turn may make, and how many of a step run at once (docs/tools.md). */
export const MAX_TOOL_CALLS_PER_TURN = 16
export const PARALLEL_TOOL_CALLS = 4

export interface ToolTurnLimits {
  maxSteps: number
  toolTimeoutMs: number
  resultMaxBytes: number
  approvalTimeoutMs: number
  /** How long a call waits for its user's input (TOOL_INPUT_TIMEOUT); its TOOL_TIMEOUT stops meanwhile. */
  inputTimeoutMs: number
  /** Images one result may show its user (MAX_IMAGES_PER_MESSAGE; 0 where nobody sees them, a Responses run), each at most MAX_IMAGE_BYTES. */
  maxImages: number
  maxImageBytes: number
  /** An image of a result made ready to store and show, as a user's would be (lib/images/image-input.ts); throws for one that is not an image. */
  prepareImage(bytes: Uint8Array): Promise<PreparedImage>
  /** Each call a span, when tracing is on. */
  tracer: Tracer
}

/** Input requests one call may put to its user; later ones are declined. */
export const MAX_INPUTS_PER_CALL = 3

/** What a turn with tools needs to go on after a pause for approvals, wherever and whenever it resumes. */
export interface ToolTurnState {
  /** The tools the chat asked for. */
  selection: true | string[]
  /** The chat's options (docs/api.md "POST /v1/chat"). */
  options: ChatOptions
  /** The chat's `think`, so that a turn resumed after an approval reasons as it began (absent: Ollama's default). */
  think?: Think | undefined
  steps: number
  calls: number
  /** The calls made so far, by tool and arguments, with their first result (the repeat rule). */
  earlier: Array<[string, { count: number; result: ToolResult }]>
  /** The waiting calls, in the order the model made them. */
  waiting: string[]
  /** The reply's sources so far (documents' and web pages'): the next web page is numbered after them. */
  sources?: number
}

/**
 * The tools a chat asks for (`true`: every allowed one; a list of `SERVER__TOOL` names), checked
 * before anything is stored: a configured server, a model with the `tools` capability, and every
 * name offered. None asked: undefined. Servers that cannot be reached just offer nothing.
 */
export async function toolsFor(app: { config: Pick<Config, 'maxToolsPerTurn'>; ollama: OllamaPool; tools: McpHub }, model: string, selection: true | string[] | undefined): Promise<TurnTools | undefined> {
  if (selection === undefined || (Array.isArray(selection) && selection.length === 0)) return undefined
  if (!app.tools.configured) throw new HttpProblem(400, 'validation', 'tools: this server has no tools configured (MCP_CONFIG: MCP servers or built-in tools), so no tool can be used.')
  await app.ollama.requireCapability(model, 'tools', 'call tools')
  const offered = await app.tools.offered(selection)
  tooManyTools(offered.length, app.config.maxToolsPerTurn, selection === true ? 'tools: true' : 'tools')
  return { offered, selection }
}

/** A turn offers at most MAX_TOOLS_PER_TURN tools: each is sent to the model with every call, and models choose worse among many. */
export function tooManyTools(count: number, max: number, param: string): void {
  if (count <= max) return
  throw new HttpProblem(400, 'validation', `${param}: that is ${count} tools, more than one turn may offer (MAX_TOOLS_PER_TURN (${max})); name the ones this chat needs.`, { param: param.split(':')[0]! })
}

/** The tools of a chat: those offered now, and what it asked for (a resumed turn offers it again). */
export interface TurnTools {
  offered: OfferedTool[]
  selection: true | string[]
}

/** The limits of a turn with tools, from the configuration; its results' images prepared through the instance's image gate. */
export const toolLimits = ({ config, imageGate, metrics, tracer }: { config: Config; imageGate: ImageGate; metrics: Pick<Metrics, 'image'>; tracer: Tracer }, { showsImages = true } = {}): ToolTurnLimits => ({
  maxSteps: config.maxToolSteps,
  toolTimeoutMs: config.toolTimeoutMs,
  resultMaxBytes: config.toolResultMaxBytes,
  approvalTimeoutMs: config.toolApprovalTimeoutMs,
  inputTimeoutMs: config.toolInputTimeoutMs,
  maxImages: showsImages ? config.maxImagesPerMessage : 0,
  maxImageBytes: config.maxImageBytes,
  prepareImage: (bytes) => imageGate.run(() => prepareImage(bytes, config, 'the image', metrics)),
  tracer,
})

/** Why a turn with tools ended before the model answered without calling one. */
export type ToolStop = 'tool_limit' | 'tool_repeat'

/** What a step's calls came to: their results in the order of the calls, and whether the turn ends here. */
export interface StepOutcome {
  /** The results of the calls that ended (every call but the waiting ones), in the order of the calls. */
  results: ToolResult[]
  /** Calls of `ask` tools, waiting for their user's approval. */
  waiting: ToolCall[]
  stop: ToolStop | null
}

/**
 * Told of each call as it starts and of its result as it ends (the SSE `tool_call` and
 * `tool_result`), and of each call that waits for approval (`approval_required`).
 */
export interface StepListener {
  call(call: ToolCall): void
  result(result: ToolResult, durationMs: number): void
  approval(call: ToolCall): void
  /** A long call's progress, as its server reports it (`notifications/progress`), at most every PROGRESS_INTERVAL_MS. */
  progress?(call: ToolCall, progress: ToolProgress): void
  /** A call's server asks its user for input (elicitation): the user's answer. Absent: nobody can be asked, and it is declined. */
  input?(call: ToolCall, request: InputRequest, signal: AbortSignal): Promise<ToolInputAnswer>
}

/** How far a call has come: `progress` of `total` (when the server knows it), and what it is doing. */
export interface ToolProgress {
  progress: number
  total?: number | undefined
  message?: string | undefined
}

/** A call's progress is passed on at most this often (a server may report it thousands of times), and at most MAX_PROGRESS_EVENTS times. */
export const PROGRESS_INTERVAL_MS = 250
export const MAX_PROGRESS_EVENTS = 200

/** A call's fate decided before it runs: its result, whether it ends the turn, whether it waits for approval. */
interface CallPlan {
  result?: ToolResult
  stop?: ToolStop
  ran?: boolean
  approval?: boolean
}

type Outcome = 'ok' | 'error' | 'invalid' | 'timeout' | 'cancelled' | 'denied' | 'repeated' | 'not_run'

/**
 * The tools of one turn (docs/tools.md): what the model is offered, and its calls run against
 * their MCP servers within the turn's limits: MAX_TOOL_STEPS model calls, 16 tool calls, 4 at once,
 * TOOL_TIMEOUT each, results cut at TOOL_RESULT_MAX_BYTES, arguments checked against the tool's
 * own schema, and the repeat rule (the same call again gets its earlier result; a third time ends the turn).
 */
export class ToolTurn {
  readonly tools: Map<string, OfferedTool>
  /** Model calls made so far; the first is made before any tool runs. */
  steps = 1
  private calls = 0
  /** Sources the reply has so far: web pages the built-in tools read are numbered after them. */
  private sourceCount: number
  private readonly earlier = new Map<string, { count: number; result: ToolResult }>()
  private readonly selection: true | string[]
  private readonly options: ChatOptions
  private readonly hub: McpHub
  private readonly think: Think | undefined
  private readonly limits: ToolTurnLimits
  private readonly metrics: Metrics
  private readonly log: Logger

  constructor(hub: McpHub, tools: OfferedTool[], limits: ToolTurnLimits, metrics: Metrics, log: Logger, state: Pick<ToolTurnState, 'selection' | 'options'> & Partial<ToolTurnState>) {
    this.hub = hub
    this.tools = new Map(tools.map((tool) => [tool.name, tool]))
    this.limits = limits
    this.metrics = metrics
    this.log = log
    this.selection = state.selection
    this.options = state.options
    this.think = state.think
    this.steps = state.steps ?? 1
    this.calls = state.calls ?? 0
    this.sourceCount = state.sources ?? 0
    for (const [key, seen] of state.earlier ?? []) this.earlier.set(key, seen)
  }

  get approvalTimeoutMs(): number {
    return this.limits.approvalTimeoutMs
  }

  /** The turn as it stands, with `waiting` calls, for resuming it after their approvals. */
  state(waiting: ToolCall[]): ToolTurnState {
    return { selection: this.selection, options: this.options, ...(this.think === undefined ? {} : { think: this.think }), steps: this.steps, calls: this.calls, earlier: [...this.earlier], waiting: waiting.map((call) => call.call_id), sources: this.sourceCount }
  }

  /** The reply has `count` sources before its first tool step (a response's file search): web pages are numbered after them. */
  numberSourcesAfter(count: number): void {
    this.sourceCount = Math.max(this.sourceCount, count)
  }

  /** The tools as Ollama takes them: functions named `SERVER__TOOL` with the server's input schema. */
  get definitions(): OllamaTool[] {
    return [...this.tools.values()].map((tool) => ({
      type: 'function',
      function: { name: tool.name, description: tool.description, parameters: tool.input_schema as OllamaTool['function']['parameters'] },
    }))
  }

  /** The model's calls of one streamed answer, each with an id of ours (Ollama's are not unique across turns). */
  static callsOf(made: OllamaToolCall[]): ToolCall[] {
    return made.map((call) => ({
      call_id: `call_${randomUUID().replaceAll('-', '')}`,
      name: String(call.function.name),
      arguments: isObject(call.function.arguments) ? call.function.arguments : {},
    }))
  }

  /**
   * Runs a step's calls (at most 4 at once), each ending in a result, except the calls of `ask`
   * tools, which wait for approval; `signal` cancels the ones running. With `answers` (a resumed
   * turn), `calls` are those that waited: run when approved, else a denial is their result.
   */
  async run(calls: ToolCall[], signal: AbortSignal, listener: StepListener, answers?: Map<string, ApprovalDecision>): Promise<StepOutcome> {
    let stop: ToolStop | null = null
    // In the order the model made them: the limits and the repeat rule count them so.
    const plans: CallPlan[] = []
    for (const call of calls) {
      const plan = answers ? this.answered(call, answers.get(call.call_id) ?? 'denied') : await this.plan(call)
      if (plan.stop) stop ??= plan.stop
      plans.push(plan)
    }
    // A turn that ends here asks nobody: its calls that would wait are not run.
    if (stop) for (const [index, plan] of plans.entries()) if (plan.approval) plans[index] = this.refuse(calls[index]!, 'not_run', 'Not run: the turn ended before it could be approved.')
    if (!answers) for (const call of calls) listener.call(call)
    const ended: Array<ToolResult | undefined> = new Array(calls.length)
    const toRun = calls.flatMap((call, index) => (plans[index]!.approval ? [] : [index]))
    let next = 0
    const worker = async () => {
      for (let at = next++; at < toRun.length; at = next++) {
        const index = toRun[at]!
        const started = performance.now()
        const result = plans[index]!.result ?? (await this.traced(calls[index]!, signal, listener))
        ended[index] = result
        listener.result(result, Math.round(performance.now() - started))
      }
    }
    await Promise.all(Array.from({ length: Math.min(PARALLEL_TOOL_CALLS, toRun.length) }, worker))
    for (const [index, call] of calls.entries()) {
      const key = callKey(call)
      // Kept for the repeat rule (and in a paused turn's state) without its images: a repeat gets the text.
      if (!this.earlier.has(key) && plans[index]!.ran) this.earlier.set(key, { count: 1, result: withoutImages(ended[index]!) })
    }
    const waiting = calls.filter((_, index) => plans[index]!.approval)
    for (const call of waiting) listener.approval(call)
    // A next model call must be allowed for the results to be read (once, for a step that waited).
    if (!answers) this.steps++
    return { results: ended.filter((result) => result !== undefined), waiting, stop }
  }

  private refuse(call: ToolCall, outcome: Outcome, content: string, stop?: ToolStop): CallPlan {
    const tool = this.tools.get(call.name)
    this.metrics.toolCall(tool?.server ?? 'unknown', tool?.tool ?? 'unknown', outcome, null)
    return { result: { callId: call.call_id, name: call.name, content, ok: outcome === 'repeated' }, ...(stop ? { stop } : {}) }
  }

  /** A call that waited, as its user answered. */
  private answered(call: ToolCall, decision: ApprovalDecision): CallPlan {
    if (decision === 'approved') return this.tools.has(call.name) ? { ran: true } : this.refuse(call, 'invalid', `Not run: the tool ${call.name} is no longer offered.`)
    return this.refuse(call, 'denied', decision === 'expired'
      ? `Denied: nobody approved this call within ${formatMs(this.limits.approvalTimeoutMs)} (TOOL_APPROVAL_TIMEOUT).`
      : 'Denied: the user did not allow this call.')
  }

  /** What a call comes to without running it (a refusal, a repeat), that it waits for approval, or nothing when it must run. */
  private async plan(call: ToolCall): Promise<CallPlan> {
    const tool = this.tools.get(call.name)
    const refuse = (outcome: Outcome, content: string, stop?: ToolStop) => this.refuse(call, outcome, content, stop)
    if (this.steps >= this.limits.maxSteps) return refuse('not_run', `Not run: this turn reached its ${this.limits.maxSteps} model calls (MAX_TOOL_STEPS).`, 'tool_limit')
    if (++this.calls > MAX_TOOL_CALLS_PER_TURN) return refuse('not_run', `Not run: this turn reached its ${MAX_TOOL_CALLS_PER_TURN} tool calls.`, 'tool_limit')
    if (!tool) return refuse('invalid', `No tool named ${JSON.stringify(call.name)} is offered; use one of: ${[...this.tools.keys()].join(', ')}.`)
    const seen = this.earlier.get(callKey(call))
    if (seen) {
      seen.count++
      if (seen.count > 2) return refuse('not_run', 'Not run: the same call with the same arguments a third time.', 'tool_repeat')
      return refuse('repeated', `[Repeated call: the tool was not called again; its earlier result follows.]\n${seen.result.content}`)
    }
    const problems = await this.validate(tool, call.arguments)
    if (problems) return refuse('invalid', `Invalid arguments for ${call.name}: ${problems}. Call it again with arguments that match its schema.`)
    return tool.policy === 'ask' ? { approval: true } : { ran: true }
  }

  /**
   * The schema's complaints about `args` (the tool's own schema, with the keywords Ollama drops),
   * or null. A check that runs out of time (a `pattern` that backtracks) is a complaint; a schema
   * the validator cannot use (a bad `pattern`, an unresolvable `$ref`) checks nothing: the server
   * checks its own input.
   */
  private async validate(tool: OfferedTool, args: Record<string, unknown>): Promise<string | null> {
    const outcome = await this.hub.checker.check(tool.input_schema, args)
    if ('timedOut' in outcome) return `the check against its schema took longer than ${SCHEMA_CHECK_TIMEOUT_MS} ms (a pattern too costly to match); send simpler values`
    if ('unusable' in outcome) {
      this.log.warn('a tool\'s input schema could not be checked', { server: tool.server, tool: tool.tool, error: outcome.unusable })
      return null
    }
    const { valid, errors } = outcome
    if (valid) return null
    // The innermost complaints say what is wrong; the outer ones only that something below is.
    const leaves = errors.filter((error) => !errors.some((other) => other !== error && other.instanceLocation.startsWith(`${error.instanceLocation}/`)))
    return (leaves.length ? leaves : errors).slice(0, 5).map((error) => `${error.instanceLocation.replace(/^#\/?/, '') || 'arguments'}: ${error.error}`).join('; ')
  }

  /** How a call reports its progress and asks its user for input: at most MAX_INPUTS_PER_CALL times, its TOOL_TIMEOUT stopped while it waits. */
  private handlers(call: ToolCall, listener: StepListener, deadline: CallDeadline): CallHandlers {
    let asked = 0
    const input = listener.input?.bind(listener)
    return {
      onProgress: progressOf(call, listener),
      ask: input && (async (request, signal) => {
        if (++asked > MAX_INPUTS_PER_CALL) return { action: 'decline' }
        deadline.pause()
        try {
          return await input(call, request, signal)
        } finally {
          deadline.resume()
        }
      }),
    }
  }

  /**
   * A call as a span (docs/tracing.md, GenAI's `execute_tool`): its tool, server and outcome; its
   * arguments and result only when OTEL_CAPTURE_CONTENT=true. An MCP server over HTTP gets its traceparent.
   */
  private traced(call: ToolCall, turn: AbortSignal, listener: StepListener): Promise<ToolResult> {
    const { tracer } = this.limits
    if (!tracer.enabled) return this.execute(call, turn, listener)
    const tool = this.tools.get(call.name)!
    return tracer.span(`execute_tool ${call.name}`, {
      attributes: {
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': call.name,
        'gen_ai.tool.call.id': call.call_id,
        'gen_ai.tool.type': 'function',
        'chat_ollama.tool.server': tool.server,
        ...(tracer.captureContent ? { 'gen_ai.tool.call.arguments': JSON.stringify(call.arguments).slice(0, 65_536) } : {}),
      },
    }, async (span) => {
      const result = await this.execute(call, turn, listener)
      span.setAttributes({ 'chat_ollama.tool.ok': result.ok, ...(tracer.captureContent ? { 'gen_ai.tool.call.result': result.content.slice(0, 65_536) } : {}) })
      if (!result.ok) span.fail(new Error(result.content.slice(0, 200)))
      return result
    })
  }

  private async execute(call: ToolCall, turn: AbortSignal, listener: StepListener): Promise<ToolResult> {
    const tool = this.tools.get(call.name)!
    const builtin = tool.server === BUILTIN_SERVER ? this.hub.builtin : undefined
    const connection = builtin ? undefined : this.hub.server(tool.server)!
    const redact = (text: string) => connection?.redact(text) ?? text
    const deadline = new CallDeadline(this.limits.toolTimeoutMs)
    const timeout = deadline.signal
    const started = performance.now()
    let outcome: Outcome
    let content: string
    let sources: WebSource[] | undefined
    let images: ResultImage[] | undefined
    try {
      if (builtin) {
        // It keeps TOOL_TIMEOUT itself: Python's counts from when its interpreter is ready.
        const output = await builtin.run(tool.tool, call.arguments, turn, this.limits.toolTimeoutMs)
        outcome = output.ok ? 'ok' : 'error'
        if ('pages' in output) {
          // Numbered as they arrive, after the reply's sources so far: the [n] the model cites.
          const numbered = output.pages.map((page) => ({ ...page, n: ++this.sourceCount }))
          sources = numbered.map(({ n, url, title, snippet }) => ({ n, url, title, snippet }))
          content = webSourcesText(output.intro, numbered)
        } else content = output.content
      } else {
        // The SDK's own timeout is a backstop: ours fires first, and says which limit it was.
        const backstop = this.limits.toolTimeoutMs + MAX_INPUTS_PER_CALL * this.limits.inputTimeoutMs + 5_000
        const result = await connection!.callTool(tool.tool, call.arguments, AbortSignal.any([turn, timeout]), backstop, this.handlers(call, listener, deadline))
        outcome = result.isError ? 'error' : 'ok'
        const parts = resultParts(result)
        images = await this.resultImages(parts.images, tool)
        // A secret of the server's configuration in its answer is masked like anywhere else.
        content = redact(parts.text.replace(IMAGE_MARK, (_mark, index: string) => images![Number(index)]?.note ?? ''))
      }
    } catch (error) {
      outcome = turn.aborted ? 'cancelled' : timeout.aborted || (error as Error).name === 'TimeoutError' ? 'timeout' : 'error'
      content = outcome === 'cancelled'
        ? 'Cancelled: the turn was stopped.'
        : outcome === 'timeout'
          ? `The tool did not answer within ${formatMs(this.limits.toolTimeoutMs)} (TOOL_TIMEOUT); the call was cancelled.`
          : `The tool call failed: ${redact((error as Error).message || String(error))}`
      if (outcome === 'error') this.log.warn('tool call failed', { server: tool.server, tool: tool.tool, error: redact((error as Error).message || String(error)) })
    }
    deadline.clear()
    this.metrics.toolCall(tool.server, tool.tool, outcome, (performance.now() - started) / 1000)
    const shown = images?.flatMap((image) => (image.stored ? [image.stored] : []))
    return { callId: call.call_id, name: call.name, content: capBytes(content, this.limits.resultMaxBytes), ok: outcome === 'ok', ...(sources ? { sources } : {}), ...(shown?.length ? { images: shown } : {}) }
  }

  /**
   * A result's images, each made ready to show its user (decoded, checked, re-encoded like a
   * user's): at most MAX_IMAGES_PER_MESSAGE, each within MAX_IMAGE_BYTES. Each gets the note the
   * model reads in its place: what it is, and whether the user sees it.
   */
  private async resultImages(images: Array<{ data: string; mimeType: string }>, tool: OfferedTool): Promise<ResultImage[]> {
    return Promise.all(images.map(async ({ data, mimeType }, index): Promise<ResultImage> => {
      const n = index + 1
      const type = mimeType.slice(0, 100)
      if (this.limits.maxImages === 0) return { note: `[image ${n} (${type}): not shown, nobody sees images here]` }
      if (index >= this.limits.maxImages) return { note: `[image ${n} (${type}): not shown, past MAX_IMAGES_PER_MESSAGE]` }
      if (base64Size(data) > this.limits.maxImageBytes) return { note: `[image ${n} (${type}): not shown, larger than MAX_IMAGE_BYTES]` }
      const bytes = base64Bytes(data)
      if (!bytes) return { note: `[image ${n} (${type}): not shown, not valid base64]` }
      try {
        const prepared = await this.limits.prepareImage(bytes)
        const stored = { id: randomUUID(), mediaType: prepared.mediaType, width: prepared.width, height: prepared.height, data: prepared.data }
        return { note: `[image ${n} (${prepared.mediaType}, ${prepared.width}×${prepared.height}): shown to the user, not to you]`, stored }
      } catch (error) {
        this.log.warn('tool result image refused', { server: tool.server, tool: tool.tool, error: (error as Error).message })
        return { note: `[image ${n} (${type}): not shown, not a readable image]` }
      }
    }))
  }
}

/** A result's image: the note the model reads in its place, and the image to store and show when it could be read. */
interface ResultImage {
  note: string
  stored?: NewImage
}

const withoutImages = ({ images: _images, ...result }: ToolResult): ToolResult => result

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** A call's TOOL_TIMEOUT: its signal aborts with a TimeoutError once the call has run that long, the time it waited for its user aside. */
class CallDeadline {
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout | undefined
  private remainingMs: number
  private since = 0

  constructor(ms: number) {
    this.remainingMs = ms
    this.resume()
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  pause(): void {
    clearTimeout(this.timer)
    this.remainingMs -= performance.now() - this.since
  }

  resume(): void {
    this.since = performance.now()
    this.timer = setTimeout(() => this.controller.abort(new DOMException('The tool call timed out.', 'TimeoutError')), Math.max(0, this.remainingMs))
  }

  clear(): void {
    clearTimeout(this.timer)
  }
}

/** A call's progress reports, passed on at most every PROGRESS_INTERVAL_MS and MAX_PROGRESS_EVENTS times; each checked (a server's numbers, a bounded message). */
function progressOf(call: ToolCall, listener: StepListener): ((report: ToolProgress) => void) | undefined {
  if (!listener.progress) return undefined
  let last = -Infinity
  let sent = 0
  return (report) => {
    const now = performance.now()
    if (now - last < PROGRESS_INTERVAL_MS || sent >= MAX_PROGRESS_EVENTS || !Number.isFinite(report.progress)) return
    last = now
    sent++
    const total = typeof report.total === 'number' && Number.isFinite(report.total) ? report.total : undefined
    const message = typeof report.message === 'string' ? report.message.slice(0, 200) : undefined
    listener.progress!(call, { progress: report.progress, ...(total === undefined ? {} : { total }), ...(message ? { message } : {}) })
  }
}

/** The same tool with the same arguments, whatever the order of their keys. */
function callKey(call: ToolCall): string {
  return `${call.name}\0${canonicalJson(call.arguments)}`
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isObject(value)) return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`
  return JSON.stringify(value) ?? 'null'
}

/** Where a result's image stands in its text until it is read (`resultParts`), numbered from 0. */
const IMAGE_MARK = /\u0000image (\d+)\u0000/g

/**
 * A tool's result as the model reads it: its text parts; a resource as its text, or its address;
 * a resource link as its name and address (the page shows an http(s) one as a link); each image
 * marked where it stands (IMAGE_MARK), its data apart; what else there is (audio…), named.
 */
export function resultParts(result: CallToolResult): { text: string; images: Array<{ data: string; mimeType: string }> } {
  const images: Array<{ data: string; mimeType: string }> = []
  const parts = (result.content ?? []).map((item) => {
    switch (item.type) {
      case 'text':
        return item.text.replaceAll('\u0000', '')
      case 'image':
        images.push({ data: item.data, mimeType: item.mimeType })
        return `\u0000image ${images.length - 1}\u0000`
      case 'resource':
        return 'text' in item.resource ? item.resource.text : `[resource ${item.resource.uri} (${item.resource.mimeType ?? 'binary'})]`
      case 'resource_link':
        return `[resource${item.name ? ` ${item.name}` : ''}: ${item.uri}]`
      default:
        return `[${item.type} (${'mimeType' in item ? item.mimeType : 'unknown type'}), not shown]`
    }
  })
  if (parts.length === 0 && result.structuredContent !== undefined) parts.push(JSON.stringify(result.structuredContent))
  return { text: parts.join('\n'), images }
}

const TRUNCATED = '\n[…cut at TOOL_RESULT_MAX_BYTES]'

/** `text` in at most `maxBytes` of UTF-8, cut at a character boundary and marked when cut. */
export function capBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text
  const room = maxBytes - Buffer.byteLength(TRUNCATED)
  // A cut inside a character leaves a replacement character at the end: dropped.
  const kept = Buffer.from(text).subarray(0, room).toString('utf8').replace(/\uFFFD+$/, '')
  return kept + TRUNCATED
}

/**
 * What a reply answers: `parentId` itself, or, when that is a step of a turn with tools (a tool
 * result, or a message that made calls), the message the turn began after.
 */
export async function questionBefore(store: Pick<ChatStore, 'getSessionMessage'>, sessionId: string, parentId: string | null): Promise<string | null> {
  // A turn holds at most MAX_TOOL_STEPS × (MAX_TOOL_CALLS_PER_TURN + 1) step messages.
  for (let hops = 0; parentId !== null && hops < 64 * (MAX_TOOL_CALLS_PER_TURN + 1); hops++) {
    const message = await store.getSessionMessage(sessionId, parentId)
    if (!message || !(message.role === 'tool' || message.tool_calls)) return parentId
    parentId = message.parent_id
  }
  return parentId
}
