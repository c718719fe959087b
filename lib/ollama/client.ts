import { Ollama, type ChatResponse, type ModelResponse, type Options, type Tool } from 'ollama'
import { imageReference, nodeFetch } from './node-fetch.ts'
import { HttpProblem } from '../shared/problem.ts'
import { maskCredentials } from '../shared/ollama-host.ts'
import type { ToolCall } from '../store/chat-store.ts'
import type { ChatOptions, Think } from '../shared/chat-options.ts'

export interface ChatMessage {
  role: string
  content: string
  /** An assistant's reasoning, sent back only within the turn that made it (its tool steps). */
  thinking?: string
  /** Images the message shows the model, as bytes (sent as plain base64, written out by lib/ollama/node-fetch.ts). */
  images?: Uint8Array[]
  /** An assistant's tool calls; Ollama's arguments are an object. */
  tool_calls?: Array<{ function: { name: string; arguments: Record<string, unknown> } }>
  /** A tool message's tool. */
  tool_name?: string
}

export interface ChatRequest {
  model: string
  messages: ChatMessage[]
  options: Partial<Options>
  /** `json` or a JSON Schema the reply must follow. */
  format?: 'json' | Record<string, unknown>
  tools?: Tool[]
  /** Absent: Ollama's default (a model that can think does). */
  think?: Think
  /** false: Ollama answers 400 instead of dropping messages when the prompt exceeds num_ctx. */
  truncate?: boolean
}

/** Ollama's options for a chat: `num_ctx` always, `max_tokens` as `num_predict`. */
export function ollamaOptions(options: ChatOptions, defaultNumCtx: number): ChatRequest['options'] {
  const mapped: ChatRequest['options'] = { num_ctx: options.num_ctx ?? defaultNumCtx }
  if (options.temperature !== undefined) mapped.temperature = options.temperature
  if (options.max_tokens !== undefined) mapped.num_predict = options.max_tokens
  if (options.top_p !== undefined) mapped.top_p = options.top_p
  if (options.top_k !== undefined) mapped.top_k = options.top_k
  if (options.seed !== undefined) mapped.seed = options.seed
  if (options.stop !== undefined) mapped.stop = options.stop
  return mapped
}

/** Calls as Ollama takes them back in an assistant message: the function's name and its arguments as an object. */
export function ollamaToolCalls(calls: ToolCall[]): NonNullable<ChatMessage['tool_calls']> {
  return calls.map((call) => ({ function: { name: call.name, arguments: call.arguments } }))
}

export interface EmbedOptions {
  timeoutMs: number
  signal?: AbortSignal
  /** Ollama cuts the vectors to this length (models trained for it, such as nomic-embed-text v1.5). */
  dimensions?: number
}

export interface EmbedResult {
  embeddings: number[][]
  /** The tokens Ollama read (`prompt_eval_count`). */
  promptTokens: number
}

/** One Ollama chat stream: its chunks, and its own abort (never the client-wide one). */
export interface ChatStream extends AsyncIterable<ChatResponse> {
  abort(): void
}

export interface OllamaClientOptions {
  /** Base URL as lib/shared/ollama-host.ts gives it. */
  host: string
  /** Longest wait for Ollama's response headers (OLLAMA_TIMEOUT). */
  headersTimeoutMs: number
}

const RETRY_AFTER_UNREACHABLE = '5'
const RETRY_AFTER_BUSY = '2'

class HeadersTimeout extends Error {
  override name = 'HeadersTimeout'
}

/**
 * The project's client of one Ollama host: ollama-js against its URL, with the timeouts and the
 * translation of Ollama's failures into problems that this service's contract promises. Several
 * hosts are used through lib/ollama/pool.ts.
 */
export class OllamaClient {
  readonly host: string
  private readonly headersTimeoutMs: number

  constructor({ host, headersTimeoutMs }: OllamaClientOptions) {
    this.host = host
    this.headersTimeoutMs = headersTimeoutMs
  }

  /**
   * Starts a streamed chat and resolves once Ollama has answered with its headers (with a real
   * Ollama, at the first token). Failures up to that point reject with an HttpProblem; `signal`
   * aborts the request at any time, the stream included.
   */
  async startChat(request: ChatRequest, signal: AbortSignal, traceparent?: string): Promise<ChatStream> {
    const headersDeadline = new AbortController()
    const timer = setTimeout(() => headersDeadline.abort(new HeadersTimeout()), this.headersTimeoutMs)
    const requestSignal = AbortSignal.any([signal, headersDeadline.signal])
    // A client per stream: its fetch carries this stream's signal, which ollama-js cannot pass
    // before the headers arrive (its own controller exists only once the iterator does).
    const client = new Ollama({
      host: this.host,
      // The chat's span (docs/tracing.md): Ollama, or a proxy before it, may trace it further.
      ...(traceparent ? { headers: { traceparent } } : {}),
      fetch: (input, init) =>
        nodeFetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, requestSignal]) : requestSignal }),
    })
    // Images go as references, written out as base64 by nodeFetch (lib/ollama/node-fetch.ts).
    const references: Array<ReturnType<typeof imageReference>> = []
    const messages = request.messages.map(({ images, ...message }) => {
      if (!images?.length) return message
      const made = images.map(imageReference)
      references.push(...made)
      return { ...message, images: made.map((made) => made.reference) }
    })
    try {
      return await client.chat({ ...request, messages, stream: true })
    } catch (error) {
      if (signal.aborted) throw new DOMException('The request to Ollama was aborted.', 'AbortError')
      if (headersDeadline.signal.aborted) {
        throw new HttpProblem(504, 'ollama', `Ollama did not answer within ${formatMs(this.headersTimeoutMs)} (OLLAMA_TIMEOUT).`, { cause: error })
      }
      throw ollamaProblem(error, this.host)
    } finally {
      clearTimeout(timer)
      for (const reference of references) reference.release()
    }
  }

  /** The models Ollama has (`/api/tags`), within `timeoutMs`. */
  async listModels(timeoutMs = this.headersTimeoutMs): Promise<ModelResponse[]> {
    try {
      const { models } = await this.withTimeout(timeoutMs, (client) => client.list())
      return models
    } catch (error) {
      throw ollamaProblem(error, this.host)
    }
  }

  /** The models Ollama has in memory (`/api/ps`), with their context length. */
  async loadedModels(timeoutMs: number): Promise<Array<{ name: string; contextLength: number | null }>> {
    const { models } = await this.withTimeout(timeoutMs, (client) => client.ps())
    return models.map((model) => ({ name: model.name, contextLength: (model as { context_length?: number }).context_length ?? null }))
  }

  /**
   * What the model can do (`/api/show` `capabilities`: `completion`, `vision`, `tools`, …); null
   * when this Ollama does not report them. Failures reject with a problem (404 for a missing model).
   */
  async capabilities(model: string, timeoutMs = this.headersTimeoutMs): Promise<string[] | null> {
    try {
      const shown = await this.withTimeout(timeoutMs, (client) => client.show({ model }))
      const reported = (shown as { capabilities?: unknown }).capabilities
      return Array.isArray(reported) ? reported.map(String) : null
    } catch (error) {
      throw ollamaProblem(error, this.host)
    }
  }

  /**
   * Embeddings of `input` by `model` (`/api/embed`, one vector per text, in order), within
   * `timeoutMs` and until `signal` aborts. Failures reject with a problem, as a chat's do.
   */
  async embed(model: string, input: string[], { timeoutMs, signal, dimensions }: EmbedOptions): Promise<EmbedResult> {
    const deadline = AbortSignal.timeout(timeoutMs)
    const both = signal ? AbortSignal.any([signal, deadline]) : deadline
    const client = new Ollama({ host: this.host, fetch: (url, init) => nodeFetch(url, { ...init, signal: both }) })
    try {
      const answer = await client.embed({ model, input, truncate: true, ...(dimensions === undefined ? {} : { dimensions }) })
      return { embeddings: answer.embeddings, promptTokens: answer.prompt_eval_count ?? 0 }
    } catch (error) {
      if (signal?.aborted) throw new DOMException('The request to Ollama was aborted.', 'AbortError')
      if (deadline.aborted) throw new HttpProblem(504, 'ollama', `Ollama did not embed within ${formatMs(timeoutMs)}.`, { cause: error })
      throw ollamaProblem(error, this.host)
    }
  }

  /** Resolves when Ollama answers `/api/version` within `timeoutMs`; rejects otherwise. */
  async version(timeoutMs: number): Promise<string> {
    return (await this.withTimeout(timeoutMs, (client) => client.version())).version
  }

  private async withTimeout<T>(timeoutMs: number, call: (client: Ollama) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(timeoutMs)
    const client = new Ollama({ host: this.host, fetch: (input, init) => nodeFetch(input, { ...init, signal }) })
    try {
      return await call(client)
    } catch (error) {
      if (signal.aborted) {
        throw new HttpProblem(504, 'ollama', `Ollama did not answer within ${formatMs(timeoutMs)}.`, { cause: error })
      }
      throw error
    }
  }
}

/** The problem for an Ollama call to `host` that failed before any token. */
export function ollamaProblem(error: unknown, host: string): HttpProblem {
  if (error instanceof HttpProblem) return error
  const status = (error as { status_code?: unknown }).status_code
  const message = error instanceof Error ? error.message : String(error)
  if ((error as Error)?.name === 'ResponseError' && typeof status === 'number') {
    if (status === 404) return new HttpProblem(404, 'model_not_found', message, { cause: error })
    if (status === 503) {
      return new HttpProblem(503, 'ollama', `Ollama is busy: ${message}`, { headers: { 'retry-after': RETRY_AFTER_BUSY }, cause: error })
    }
    return new HttpProblem(502, 'ollama', message, { cause: error })
  }
  if (error instanceof TypeError) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    const why = cause?.code ?? cause?.message ?? message
    return new HttpProblem(503, 'ollama', `Ollama at ${maskCredentials(host)} is unreachable (${why}): is it running, and does OLLAMA_HOST (or OLLAMA_HOSTS) name it?`, {
      headers: { 'retry-after': RETRY_AFTER_UNREACHABLE },
      cause: error,
    })
  }
  return new HttpProblem(502, 'ollama', message, { cause: error })
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}
