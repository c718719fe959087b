import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** What the metrics read at scrape time rather than count as things happen. */
export interface MetricSources {
  activeGenerations(): number
  hosts(): Array<{ host: string; up: boolean; outstanding: number }>
}

const PREFIX = 'chat_ollama_'

/**
 * The service's Prometheus metrics (GET /metrics), in a registry of its own per app context.
 * Labels are bounded on purpose: function names, methods, statuses, problem kinds and the
 * configured Ollama hosts; never a user, a session or a path. Counting is a few map lookups
 * and additions per request or per reply, nothing per token.
 */
export class Metrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'function' | 'method' | 'status'>
  private readonly requestSeconds: Histogram<'function'>
  private readonly problems: Counter<'kind'>
  private readonly rateLimited: Counter<'function'>
  private readonly firstTokenSeconds: Histogram
  private readonly tokens: Counter<'direction'>
  private readonly replies: Counter<'status'>
  private defaultsCollected = false

  constructor(sources: MetricSources) {
    const registers = [this.registry]
    this.requests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: 'HTTP requests answered, by function (the endpoint that answered; "none" when no route matched), method and status.',
      labelNames: ['function', 'method', 'status'],
      registers,
    })
    this.requestSeconds = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'Time from a request to its response headers (for an event stream, its start), by function.',
      labelNames: ['function'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    this.problems = new Counter({ name: `${PREFIX}problems_total`, help: 'Problem (RFC 7807) answers, by kind.', labelNames: ['kind'], registers })
    this.rateLimited = new Counter({
      name: `${PREFIX}rate_limited_total`,
      help: 'Requests refused with 429 (RATE_LIMIT, failed credentials, MAX_CONCURRENT_CHATS, followers), by function.',
      labelNames: ['function'],
      registers,
    })
    this.firstTokenSeconds = new Histogram({
      name: `${PREFIX}time_to_first_token_seconds`,
      help: 'Time from a chat being accepted to its first token being sent.',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    })
    this.tokens = new Counter({ name: `${PREFIX}tokens_total`, help: 'Tokens Ollama read (input) and wrote (output) for finished replies.', labelNames: ['direction'], registers })
    // Both series exist from the start, so a rate over them is defined before the first reply.
    this.tokens.inc({ direction: 'input' }, 0)
    this.tokens.inc({ direction: 'output' }, 0)
    this.replies = new Counter({ name: `${PREFIX}replies_total`, help: 'Replies ended, by stored status.', labelNames: ['status'], registers })
    new Gauge({
      name: `${PREFIX}generations_active`,
      help: 'Chats accepted and not yet stored (set up or generating).',
      registers,
      collect() {
        this.set(sources.activeGenerations())
      },
    })
    new Gauge({
      name: `${PREFIX}ollama_host_up`,
      help: '1 when the Ollama host answered its last probe, else 0.',
      labelNames: ['host'],
      registers,
      collect() {
        for (const host of sources.hosts()) this.set({ host: host.host }, host.up ? 1 : 0)
      },
    })
    new Gauge({
      name: `${PREFIX}ollama_host_outstanding`,
      help: 'Chats running on each Ollama host.',
      labelNames: ['host'],
      registers,
      collect() {
        for (const host of sources.hosts()) this.set({ host: host.host }, host.outstanding)
      },
    })
  }

  request(fn: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ function: fn, method, status: String(status) })
    this.requestSeconds.observe({ function: fn }, seconds)
  }

  problem(kind: string, fn: string): void {
    this.problems.inc({ kind })
    if (kind === 'rate_limit') this.rateLimited.inc({ function: fn })
  }

  firstToken(seconds: number): void {
    this.firstTokenSeconds.observe(seconds)
  }

  reply(status: string, inputTokens: number | null, outputTokens: number | null): void {
    this.replies.inc({ status })
    if (inputTokens) this.tokens.inc({ direction: 'input' }, inputTokens)
    if (outputTokens) this.tokens.inc({ direction: 'output' }, outputTokens)
  }

  /** The exposition, with Node's process metrics (collected from the first scrape on). */
  async exposition(): Promise<{ body: string; contentType: string }> {
    if (!this.defaultsCollected) {
      collectDefaultMetrics({ register: this.registry })
      this.defaultsCollected = true
    }
    return { body: await this.registry.metrics(), contentType: this.registry.contentType }
  }
}
