import { Ollama, type ChatResponse, type ModelResponse, type Options } from 'ollama'
import { canonicalModelName } from './models.ts'
import { nodeFetch } from './node-fetch.ts'
import { HttpProblem } from './problem.ts'

export interface ChatMessage {
  role: string
  content: string
}

export interface ChatRequest {
  model: string
  messages: ChatMessage[]
  options: Partial<Options>
}

/** One Ollama chat stream: its chunks, and its own abort (never the client-wide one). */
export interface ChatStream extends AsyncIterable<ChatResponse> {
  abort(): void
}

export interface OllamaClientOptions {
  /** Base URL as lib/ollama-host.ts gives it. */
  host: string
  /** Longest wait for Ollama's response headers (OLLAMA_TIMEOUT). */
  headersTimeoutMs: number
  /** How long a health answer is reused. */
  healthCacheMs?: number
  /** Timeout of the health probe. */
  healthTimeoutMs?: number
}

const RETRY_AFTER_UNREACHABLE = '5'
/** How long a model seen in Ollama's list is taken as present before the list is asked again. */
const MODEL_LIST_FRESH_MS = 60_000
const RETRY_AFTER_BUSY = '2'

class HeadersTimeout extends Error {
  override name = 'HeadersTimeout'
}

/**
 * The project's Ollama client: ollama-js against the configured host, with the timeouts and the
 * translation of Ollama's failures into problems that this service's contract promises.
 */
export class OllamaClient {
  readonly host: string
  private readonly headersTimeoutMs: number
  private readonly healthCacheMs: number
  private readonly healthTimeoutMs: number
  private health: { checkedAt: number; answer: Promise<boolean> } | undefined
  private modelList: { names: Set<string>; fetchedAt: number } | undefined
  private modelListRefresh: Promise<Set<string> | undefined> | undefined

  constructor({ host, headersTimeoutMs, healthCacheMs = 2000, healthTimeoutMs = 2000 }: OllamaClientOptions) {
    this.host = host
    this.headersTimeoutMs = headersTimeoutMs
    this.healthCacheMs = healthCacheMs
    this.healthTimeoutMs = healthTimeoutMs
  }

  /**
   * Starts a streamed chat and resolves once Ollama has answered with its headers (with a real
   * Ollama, at the first token). Failures up to that point reject with an HttpProblem; `signal`
   * aborts the request at any time, the stream included.
   */
  async startChat(request: ChatRequest, signal: AbortSignal): Promise<ChatStream> {
    const headersDeadline = new AbortController()
    const timer = setTimeout(() => headersDeadline.abort(new HeadersTimeout()), this.headersTimeoutMs)
    const requestSignal = AbortSignal.any([signal, headersDeadline.signal])
    // A client per stream: its fetch carries this stream's signal, which ollama-js cannot pass
    // before the headers arrive (its own controller exists only once the iterator does).
    const client = new Ollama({
      host: this.host,
      fetch: (input, init) =>
        nodeFetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, requestSignal]) : requestSignal }),
    })
    try {
      return await client.chat({ ...request, stream: true })
    } catch (error) {
      if (signal.aborted) throw new DOMException('The request to Ollama was aborted.', 'AbortError')
      if (headersDeadline.signal.aborted) {
        throw new HttpProblem(504, 'ollama', `Ollama did not answer within ${formatMs(this.headersTimeoutMs)} (OLLAMA_TIMEOUT).`, { cause: error })
      }
      throw ollamaProblem(error)
    } finally {
      clearTimeout(timer)
    }
  }

  /** The models Ollama has (`/api/tags`). */
  async listModels(): Promise<ModelResponse[]> {
    try {
      const { models } = await this.withTimeout(this.headersTimeoutMs, (client) => client.list())
      return models
    } catch (error) {
      throw ollamaProblem(error)
    }
  }

  /**
   * Whether Ollama has `model`, from its list (`/api/tags`); undefined when Ollama cannot be
   * asked within the health timeout (then Ollama itself decides, through the chat). A model seen in the list answers at once (the list is refreshed behind it once stale);
   * a model not seen asks again, so one pulled a moment ago is found.
   */
  async hasModel(model: string): Promise<boolean | undefined> {
    const name = canonicalModelName(model)
    const known = this.modelList
    if (known?.names.has(name)) {
      if (Date.now() - known.fetchedAt >= MODEL_LIST_FRESH_MS) void this.refreshModelList()
      return true
    }
    const names = await this.refreshModelList()
    return names?.has(name)
  }

  private refreshModelList(): Promise<Set<string> | undefined> {
    // A short deadline of its own: a slow list must not double the wait that OLLAMA_TIMEOUT bounds.
    this.modelListRefresh ??= this.withTimeout(Math.min(this.healthTimeoutMs, this.headersTimeoutMs), (client) => client.list())
      .then(({ models }) => models)
      .then(
        (models) => {
          const names = new Set(models.map((entry) => canonicalModelName(entry.name)))
          this.modelList = { names, fetchedAt: Date.now() }
          return names
        },
        () => undefined,
      )
      .finally(() => (this.modelListRefresh = undefined))
    return this.modelListRefresh
  }

  /**
   * Whether Ollama answers `/api/version` within the health timeout. Answers are reused for a
   * short while and concurrent checks share one probe, so health checks never flood Ollama.
   */
  isHealthy(): Promise<boolean> {
    const now = Date.now()
    if (!this.health || now - this.health.checkedAt >= this.healthCacheMs) {
      const answer = this.withTimeout(this.healthTimeoutMs, (client) => client.version()).then(
        () => true,
        () => false,
      )
      this.health = { checkedAt: now, answer }
    }
    return this.health.answer
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

/** The problem for an Ollama call that failed before any token. */
export function ollamaProblem(error: unknown): HttpProblem {
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
    return new HttpProblem(503, 'ollama', `Ollama is unreachable: ${cause?.code ?? cause?.message ?? message}.`, {
      headers: { 'retry-after': RETRY_AFTER_UNREACHABLE },
      cause: error,
    })
  }
  return new HttpProblem(502, 'ollama', message, { cause: error })
}

export function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}
