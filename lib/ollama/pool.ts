import type { ModelResponse } from 'ollama'
import type { Logger } from '../observability/log.ts'
import { NO_TRACING, traceparentOf, type SpanAttributes, type Tracer, type TraceSpan } from '../observability/tracing.ts'
import { canonicalModelName } from '../shared/models.ts'
import { OllamaClient, ollamaProblem, type ChatRequest, type ChatStream, type EmbedOptions, type EmbedResult } from './client.ts'
import { HttpProblem } from '../shared/problem.ts'
import { maskCredentials } from '../shared/ollama-host.ts'

export type HostState = 'up' | 'down' | 'unknown'

export interface OllamaPoolOptions {
  /** Base URLs as lib/shared/ollama-host.ts gives them (credentials allowed). */
  hosts: string[]
  /** Longest wait for a chat's response headers (OLLAMA_TIMEOUT). */
  headersTimeoutMs: number
  /** How often every host is probed (OLLAMA_PROBE_INTERVAL). */
  probeIntervalMs: number
  log: Logger
  /** Each chat a span (`chat <model>`, GenAI conventions), its traceparent sent to Ollama. */
  tracer?: Tracer | undefined
}

/** A host's health as /health shows it. */
export interface HostHealth {
  host: string
  state: HostState
  outstanding: number
  models: number
  loaded: string[]
}

/** A chat started on a host; `release` when its generation has ended. */
export interface HostLease {
  stream: ChatStream
  /** The host's URL without credentials: what a session is pinned to. */
  host: string
  release(): void
}

/** Consecutive failures (probes or chats) that take a host out of rotation. */
const FAILURES_TO_OPEN = 2
/** Each probe request's deadline, as the single-host health check had. */
const PROBE_TIMEOUT_MS = 2000
/** How long a probe's answer serves /health and /v1/models before they ask again. */
const FRESH_MS = 2000

class PooledHost {
  readonly label: string
  readonly client: OllamaClient
  state: HostState = 'unknown'
  failures = 0
  /** While down, chats are not sent here before this time; a successful probe ends it sooner. */
  downUntil = 0
  /** Canonical names from /api/tags; undefined until the host has been listed once. */
  models: Set<string> | undefined
  listed: ModelResponse[] = []
  /** Canonical names from /api/ps, with their context length. */
  loaded = new Map<string, number | null>()
  outstanding = 0
  lastChosenAt = 0

  constructor(url: string, headersTimeoutMs: number) {
    this.client = new OllamaClient({ host: url, headersTimeoutMs })
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    this.label = parsed.toString().replace(/\/$/, '')
  }

  has(model: string): boolean {
    return this.models === undefined || this.models.has(model)
  }
}

/**
 * Every Ollama host behind this API. Each is probed in the background (health through
 * /api/version, installed models through /api/tags, loaded ones through /api/ps) and counted
 * (chats outstanding). A chat goes to the first of: the host its conversation used last (Ollama
 * keeps the shared prefix's KV cache only there), a healthy host with the model loaded and the
 * fewest outstanding, a healthy host with it installed and the fewest outstanding. Before the
 * first token, a refused connection, a 5xx (503 busy included) or no headers within
 * OLLAMA_TIMEOUT moves the chat to the next host, each tried at most once.
 */
export class OllamaPool {
  readonly hosts: PooledHost[]
  /** Turns whose conversation had a usable pinned host, and those of them that ran there. */
  readonly stats = { pinnedTurns: 0, warmTurns: 0 }
  private readonly log: Logger
  private readonly probeIntervalMs: number
  private readonly cooldownMs: number
  private probing: Promise<void> | undefined
  private probedAt = 0
  private timer: NodeJS.Timeout | undefined

  private readonly tracer: Tracer

  constructor({ hosts, headersTimeoutMs, probeIntervalMs, log, tracer = NO_TRACING }: OllamaPoolOptions) {
    this.hosts = hosts.map((url) => new PooledHost(url, headersTimeoutMs))
    this.log = log
    this.tracer = tracer
    this.probeIntervalMs = probeIntervalMs
    this.cooldownMs = 3 * probeIntervalMs
  }

  /** Stops the background probes (at shutdown). */
  stop(): void {
    clearInterval(this.timer)
  }

  /**
   * Whether some host has `model`. A model seen in a list answers at once; one not seen asks every
   * host again (a model pulled a moment ago is found). Undefined when no list could be had: then
   * the chat itself finds out.
   */
  async hasModel(model: string): Promise<boolean | undefined> {
    this.ensureProbing()
    const name = canonicalModelName(model)
    if (this.hosts.some((host) => host.models?.has(name))) return true
    await this.probe()
    if (this.hosts.some((host) => host.models?.has(name))) return true
    return this.hosts.every((host) => host.models !== undefined) ? false : undefined
  }

  /**
   * What `model` can do, as `/api/show` of a host that has it reports (cached per model and
   * digest: a model pulled again is asked again). Null when Ollama reports no capabilities.
   */
  async capabilities(model: string): Promise<string[] | null> {
    this.ensureProbing()
    const name = canonicalModelName(model)
    const host = this.candidates(name, undefined)[0]
    if (!host) throw this.missingOrUnreachable(model, name)
    const digest = host.listed.find((listed) => canonicalModelName(listed.name) === name)?.digest
    const cached = this.capabilityCache.get(name)
    if (cached && (cached.digest === undefined || digest === undefined || cached.digest === digest)) return cached.capabilities
    const entry = { digest, capabilities: host.client.capabilities(model) }
    this.capabilityCache.set(name, entry)
    // A failure is not remembered: the next request asks again.
    entry.capabilities.catch(() => this.capabilityCache.get(name) === entry && this.capabilityCache.delete(name))
    return entry.capabilities
  }

  /** Refuses (400 `model_capability`) a request that needs `capability` of a model without it; `need` says what for. */
  async requireCapability(model: string, capability: 'vision' | 'tools' | 'thinking' | 'embedding', need: string): Promise<void> {
    const capabilities = await this.capabilities(model)
    if (capabilities?.includes(capability)) return
    const has = capabilities ? `it has ${capabilities.join(', ') || 'none'}` : 'this Ollama reports no capabilities'
    throw new HttpProblem(400, 'model_capability', `The model ${model} cannot ${need}: Ollama does not list '${capability}' among its capabilities (${has}).`)
  }

  private readonly capabilityCache = new Map<string, { digest: string | undefined; capabilities: Promise<string[] | null> }>()

  /** The union of every reachable host's models, each saying which hosts have it; 503 when none answers. */
  async listModels(): Promise<Array<ModelResponse & { hosts: string[] }>> {
    await this.fresh()
    const up = this.hosts.filter((host) => host.state === 'up')
    if (up.length === 0) {
      throw new HttpProblem(503, 'ollama', 'No Ollama host is reachable.', { headers: { 'retry-after': '5' } })
    }
    const byName = new Map<string, ModelResponse & { hosts: string[] }>()
    for (const host of up) {
      for (const model of host.listed) {
        const entry = byName.get(model.name) ?? { ...model, hosts: [] }
        entry.hosts.push(host.label)
        byName.set(model.name, entry)
      }
    }
    return [...byName.values()]
  }

  /** Each host's state as last seen, without asking it (for metrics). */
  hostStates(): Array<{ host: string; up: boolean; outstanding: number }> {
    return this.hosts.map((host) => ({ host: host.label, up: host.state === 'up', outstanding: host.outstanding }))
  }

  /** Every host's state, as fresh as FRESH_MS. */
  async health(): Promise<{ up: number; total: number; hosts: HostHealth[] }> {
    await this.fresh()
    const hosts = this.hosts.map((host) => ({
      host: host.label,
      state: host.state,
      outstanding: host.outstanding,
      models: host.models?.size ?? 0,
      loaded: [...host.loaded.keys()],
    }))
    return { up: hosts.filter((host) => host.state === 'up').length, total: hosts.length, hosts }
  }

  /**
   * Starts a streamed chat on the best host for `request.model` (the conversation's `pinned`
   * host first), moving on to the next candidate on a failure before the first token. Rejects
   * with 404 when no host has the model, 503 when none could take it.
   */
  async startChat(request: ChatRequest, signal: AbortSignal, pinned?: string | null): Promise<HostLease> {
    if (!this.tracer.enabled) return this.chooseAndStart(request, signal, pinned)
    const span = this.tracer.start(`chat ${request.model}`, { kind: 'client', attributes: chatSpanAttributes(request, this.tracer.captureContent) })
    try {
      const lease = await this.tracer.within(span, () => this.chooseAndStart(request, signal, pinned, span))
      const host = new URL(lease.host)
      span.setAttributes({ 'server.address': host.hostname, 'server.port': Number(host.port || (host.protocol === 'https:' ? 443 : 80)), 'chat_ollama.ollama_host': lease.host })
      return { ...lease, stream: tracedStream(lease.stream, span, this.tracer.captureContent) }
    } catch (error) {
      span.fail(error)
      span.end()
      throw error
    }
  }

  private async chooseAndStart(request: ChatRequest, signal: AbortSignal, pinned: string | null | undefined, span?: TraceSpan): Promise<HostLease> {
    this.ensureProbing()
    const name = canonicalModelName(request.model)
    const candidates = this.candidates(name, pinned ?? undefined)
    const pinnedHost = pinned ? candidates.find((host) => host.label === pinned) : undefined
    if (pinnedHost) this.stats.pinnedTurns++
    const problems: HttpProblem[] = []
    for (const host of candidates) {
      host.outstanding++
      host.lastChosenAt = performance.now()
      try {
        const stream = await host.client.startChat(request, signal, span?.context && traceparentOf(span.context))
        this.succeeded(host)
        if (host === pinnedHost) this.stats.warmTurns++
        let released = false
        return {
          stream,
          host: host.label,
          release: () => {
            if (!released) host.outstanding--
            released = true
          },
        }
      } catch (error) {
        host.outstanding--
        if (signal.aborted) throw error
        const problem = ollamaProblem(error, host.label)
        const upstreamStatus = (problem.cause as { status_code?: unknown } | undefined)?.status_code
        if (problem.status === 404) {
          // Its list was stale: the model is gone from there.
          host.models?.delete(name)
        } else if (problem.status === 503 && typeof upstreamStatus === 'number') {
          // Busy (its queue is full): healthy, just not now.
        } else if (problem.status === 503 || problem.status === 504 || (typeof upstreamStatus === 'number' && upstreamStatus >= 500)) {
          this.failed(host, problem.detail)
        } else {
          throw problem
        }
        problems.push(problem)
        span?.addEvent('ollama host failed', { 'chat_ollama.ollama_host': host.label, 'error.type': String(problem.status) })
      }
    }
    // Every candidate failed: the client gets what the last host said (404 only when all said it).
    const last = problems.findLast((problem) => problem.status !== 404) ?? problems.at(-1)
    if (last) throw last
    if (this.hosts.every((host) => host.models !== undefined && !host.models.has(name))) {
      throw new HttpProblem(404, 'model_not_found', `model '${request.model}' not found`)
    }
    throw this.noHostAnswers(request.model)
  }

  /**
   * Embeddings of `input` by `model` on the best host that has it, moving on to the next one when
   * a host is unreachable or fails (5xx); other refusals (404, 400) are the caller's.
   */
  async embed(model: string, input: string[], options: EmbedOptions): Promise<EmbedResult> {
    this.ensureProbing()
    const name = canonicalModelName(model)
    let last: HttpProblem | undefined
    for (const host of this.candidates(name, undefined)) {
      host.outstanding++
      try {
        const result = await host.client.embed(model, input, options)
        this.succeeded(host)
        return result
      } catch (error) {
        if (options.signal?.aborted) throw error
        const problem = ollamaProblem(error, host.label)
        const upstreamStatus = (problem.cause as { status_code?: unknown } | undefined)?.status_code
        if (problem.status === 404) host.models?.delete(name)
        // Ollama refused the request itself (a 400): another host would too.
        else if (problem.status < 500 || (typeof upstreamStatus === 'number' && upstreamStatus < 500)) throw problem
        // Busy (its queue is full) is healthy, just not now.
        else if (!(problem.status === 503 && typeof upstreamStatus === 'number')) this.failed(host, problem.detail)
        last = problem
      } finally {
        host.outstanding--
      }
    }
    if (last) throw last
    throw this.missingOrUnreachable(model, name)
  }

  /** 404 when every host listed its models and none has `model`; else 503 (some host could not be asked). */
  private missingOrUnreachable(model: string, name: string): HttpProblem {
    if (this.hosts.every((host) => host.models !== undefined && !host.models.has(name))) return new HttpProblem(404, 'model_not_found', `model '${model}' not found`)
    return this.noHostAnswers(model)
  }

  /** 503 for a model no host can take now, naming the hosts and where they are configured. */
  private noHostAnswers(model: string): HttpProblem {
    const hosts = this.hosts.map((host) => maskCredentials(host.label)).join(', ')
    return new HttpProblem(503, 'ollama', `Ollama is unreachable: no host that has ${model} answers its checks (tried ${hosts}; set by OLLAMA_HOST or OLLAMA_HOSTS).`, { headers: { 'retry-after': '5' } })
  }

  private candidates(name: string, pinned: string | undefined): PooledHost[] {
    const now = Date.now()
    const leastBusy = (a: PooledHost, b: PooledHost) => a.outstanding - b.outstanding || a.lastChosenAt - b.lastChosenAt
    const available = this.hosts.filter((host) => host.state !== 'down' && host.has(name))
    const first = available.find((host) => host.label === pinned)
    const others = available.filter((host) => host !== first)
    return [
      ...(first ? [first] : []),
      ...others.filter((host) => host.loaded.has(name)).sort(leastBusy),
      ...others.filter((host) => !host.loaded.has(name) && host.models !== undefined).sort(leastBusy),
      ...others.filter((host) => host.models === undefined).sort(leastBusy),
      // Down hosts whose cooldown has passed, as a last resort before refusing.
      ...this.hosts.filter((host) => host.state === 'down' && now >= host.downUntil && host.has(name)).sort(leastBusy),
    ]
  }

  private ensureProbing(): void {
    if (this.timer) return
    this.timer = setInterval(() => void this.probe(), this.probeIntervalMs)
    this.timer.unref()
    void this.probe()
  }

  private async fresh(): Promise<void> {
    this.ensureProbing()
    if (Date.now() - this.probedAt >= FRESH_MS) await this.probe()
  }

  /** Probes every host once; concurrent callers share the probe in flight. */
  private probe(): Promise<void> {
    this.probing ??= Promise.all(this.hosts.map((host) => this.probeHost(host))).then(() => {
      this.probedAt = Date.now()
      this.probing = undefined
    })
    return this.probing
  }

  private async probeHost(host: PooledHost): Promise<void> {
    try {
      await host.client.version(PROBE_TIMEOUT_MS)
    } catch (error) {
      this.failed(host, (error as Error).message)
      return
    }
    this.succeeded(host)
    // A host too busy to list its models in time is still up: it keeps its last lists.
    const [listed, loaded] = await Promise.allSettled([host.client.listModels(PROBE_TIMEOUT_MS), host.client.loadedModels(PROBE_TIMEOUT_MS)])
    if (listed.status === 'fulfilled') {
      host.listed = listed.value
      host.models = new Set(listed.value.map((model) => canonicalModelName(model.name)))
    }
    if (loaded.status === 'fulfilled') {
      host.loaded = new Map(loaded.value.map((model) => [canonicalModelName(model.name), model.contextLength]))
    }
  }

  private succeeded(host: PooledHost): void {
    if (host.state === 'down') this.log.info('ollama host is back', { host: host.label })
    host.state = 'up'
    host.failures = 0
  }

  private failed(host: PooledHost, why: string): void {
    host.failures++
    if (host.failures < FAILURES_TO_OPEN && host.state !== 'unknown') return
    if (host.state !== 'down') this.log.warn('ollama host is down', { host: host.label, error: why })
    host.state = 'down'
    host.downUntil = Date.now() + this.cooldownMs
  }
}

/** The span of a chat before Ollama answers (OpenTelemetry's GenAI conventions); its messages only when OTEL_CAPTURE_CONTENT=true. */
function chatSpanAttributes(request: ChatRequest, captureContent: boolean): SpanAttributes {
  return {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'ollama',
    'gen_ai.request.model': request.model,
    'gen_ai.request.max_tokens': request.options?.num_predict,
    'gen_ai.request.temperature': request.options?.temperature,
    'gen_ai.request.top_p': request.options?.top_p,
    'chat_ollama.request.messages': request.messages.length,
    'chat_ollama.request.tools': request.tools?.length,
    ...(captureContent ? { 'gen_ai.input.messages': JSON.stringify(request.messages.map(({ role, content }) => ({ role, content }))).slice(0, 65_536) } : {}),
  }
}

/** `stream` with its span told the time to the first chunk, the tokens, why it ended, and ended with it. */
function tracedStream(stream: ChatStream, span: TraceSpan, captureContent: boolean): ChatStream {
  const started = performance.now()
  return {
    abort: () => stream.abort(),
    async *[Symbol.asyncIterator]() {
      let first = true
      let text = ''
      try {
        for await (const chunk of stream) {
          if (first) span.setAttributes({ 'chat_ollama.time_to_first_chunk_ms': Math.round(performance.now() - started) })
          first = false
          if (captureContent) text += chunk.message?.content ?? ''
          if (chunk.done) {
            span.setAttributes({
              'gen_ai.response.model': chunk.model,
              'gen_ai.response.finish_reasons': [chunk.done_reason ?? 'stop'],
              'gen_ai.usage.input_tokens': chunk.prompt_eval_count,
              'gen_ai.usage.output_tokens': chunk.eval_count,
              ...(captureContent ? { 'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', content: text }]).slice(0, 65_536) } : {}),
            })
          }
          yield chunk
        }
      } catch (error) {
        span.fail(error)
        throw error
      } finally {
        span.end()
      }
    },
  }
}
