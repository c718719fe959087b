import { Counter, Gauge, Histogram, Registry, registerProcessMetrics } from './prometheus.ts'

/** What the metrics read at scrape time rather than count as things happen. */
export interface MetricSources {
  /** INSTANCE_ID, on chat_ollama_instance_info: which of several instances these figures are. */
  instanceId: string
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
  private readonly requests: Counter
  private readonly requestSeconds: Histogram
  private readonly problems: Counter
  private readonly rateLimited: Counter
  private readonly firstTokenSeconds: Histogram
  private readonly thinkingSeconds: Histogram
  private readonly tokens: Counter
  private readonly replies: Counter
  private readonly ratings: Counter
  private readonly images: Counter
  private readonly imageSeconds: Histogram
  private readonly toolCalls: Counter
  private readonly toolCallSeconds: Histogram
  private readonly checkpointLagSeconds: Histogram
  private readonly traceSpans: Counter
  private processMetrics = false

  constructor(sources: MetricSources) {
    const add = <T extends Counter | Gauge | Histogram>(metric: T) => this.registry.register(metric)
    this.requests = add(new Counter(
      `${PREFIX}http_requests_total`,
      'HTTP requests answered, by function (the endpoint that answered; "none" when no route matched), method and status.',
      ['function', 'method', 'status'],
    ))
    this.requestSeconds = add(new Histogram(
      `${PREFIX}http_request_duration_seconds`,
      'Time from a request to its response headers (for an event stream, its start), by function.',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      ['function'],
    ))
    this.problems = add(new Counter(`${PREFIX}problems_total`, 'Problem (RFC 7807) answers, by kind.', ['kind']))
    this.rateLimited = add(new Counter(
      `${PREFIX}rate_limited_total`,
      'Requests refused with 429 (RATE_LIMIT, failed credentials, MAX_CONCURRENT_CHATS, followers), by function.',
      ['function'],
    ))
    this.firstTokenSeconds = add(new Histogram(
      `${PREFIX}time_to_first_token_seconds`,
      'Time from a chat being accepted to its first token being sent.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    ))
    this.thinkingSeconds = add(new Histogram(
      `${PREFIX}thinking_duration_seconds`,
      'How long a reasoning model thought before (and between) the text of a reply that thought, by model (one Ollama has: a chat for any other is refused first).',
      [0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600],
      ['model'],
    ))
    this.tokens = add(new Counter(`${PREFIX}tokens_total`, 'Tokens Ollama read (input) and wrote (output) for finished replies.', ['direction']))
    // Both series exist from the start, so a rate over them is defined before the first reply.
    this.tokens.inc({ direction: 'input' }, 0)
    this.tokens.inc({ direction: 'output' }, 0)
    this.replies = add(new Counter(`${PREFIX}replies_total`, 'Replies ended, by stored status.', ['status']))
    this.traceSpans = add(new Counter(`${PREFIX}trace_spans_total`, 'Spans of tracing (docs/tracing.md) that ended: exported, dropped (the queue was full: the collector is down or slow), or lost (the collector refused them).', ['outcome']))
    this.ratings = add(new Counter(`${PREFIX}reply_ratings_total`, 'Ratings given to replies (docs/api.md "Rating replies"): each thumbs up or down set on a reply that did not have it.', ['rating']))
    this.ratings.inc({ rating: 'up' }, 0)
    this.ratings.inc({ rating: 'down' }, 0)
    this.images = add(new Counter(`${PREFIX}images_total`, 'Images read, typed and re-encoded (docs/images.md): re-encoded, or refused for what they hold.', ['outcome']))
    this.imageSeconds = add(new Histogram(
      `${PREFIX}image_processing_seconds`,
      'Time to read, scale and re-encode one image (sharp, off the event loop), waiting for a thread included.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ))
    this.toolCalls = add(new Counter(
      `${PREFIX}tool_calls_total`,
      'Tool calls the model made (docs/tools.md), by server, tool and outcome: ok, error, invalid, timeout, cancelled, denied, repeated, not_run.',
      ['server', 'tool', 'outcome'],
    ))
    this.toolCallSeconds = add(new Histogram(
      `${PREFIX}tool_call_duration_seconds`,
      'Time one tool call ran on its MCP server (calls that ran only), by server.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      ['server'],
    ))
    this.checkpointLagSeconds = add(new Histogram(
      `${PREFIX}checkpoint_lag_seconds`,
      'How old the oldest text a checkpoint of a streaming reply stored was when the checkpoint committed (at most CHECKPOINT_INTERVAL plus the write, docs/reliability.md).',
      [0.1, 0.25, 0.5, 0.75, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10],
    ))
    // The Prometheus way to carry a constant label: join it onto any series with group_left.
    add(new Gauge(`${PREFIX}instance_info`, 'Always 1; instance_id names this instance among those on one database (INSTANCE_ID).', ['instance_id'], (gauge) => gauge.set({ instance_id: sources.instanceId }, 1)))
    add(new Gauge(`${PREFIX}generations_active`, 'Chats accepted and not yet stored (set up or generating).', [], (gauge) => gauge.set({}, sources.activeGenerations())))
    add(new Gauge(`${PREFIX}ollama_host_up`, '1 when the Ollama host answered its last probe, else 0.', ['host'], (gauge) => {
      for (const host of sources.hosts()) gauge.set({ host: host.host }, host.up ? 1 : 0)
    }))
    add(new Gauge(`${PREFIX}ollama_host_outstanding`, 'Chats running on each Ollama host.', ['host'], (gauge) => {
      for (const host of sources.hosts()) gauge.set({ host: host.host }, host.outstanding)
    }))
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
    this.firstTokenSeconds.observe({}, seconds)
  }

  /** `count` spans exported, dropped or lost (docs/tracing.md). */
  traceSpansEnded(outcome: 'exported' | 'dropped' | 'lost', count = 1): void {
    this.traceSpans.inc({ outcome }, count)
  }

  reply(status: string, inputTokens: number | null, outputTokens: number | null): void {
    this.replies.inc({ status })
    if (inputTokens) this.tokens.inc({ direction: 'input' }, inputTokens)
    if (outputTokens) this.tokens.inc({ direction: 'output' }, outputTokens)
  }

  /** A reply was rated `rating` (up or down), which it was not before. */
  rated(rating: 'up' | 'down'): void {
    this.ratings.inc({ rating })
  }

  /** A reply's model thought for `seconds` in all. */
  thinking(model: string, seconds: number): void {
    this.thinkingSeconds.observe({ model }, seconds)
  }

  image(outcome: 'reencoded' | 'refused', seconds: number): void {
    this.images.inc({ outcome })
    if (outcome === 'reencoded') this.imageSeconds.observe({}, seconds)
  }

  /** A tool call ended; `seconds` when it ran on its server. */
  toolCall(server: string, tool: string, outcome: string, seconds: number | null): void {
    this.toolCalls.inc({ server, tool, outcome })
    if (seconds !== null) this.toolCallSeconds.observe({ server }, seconds)
  }

  checkpoint(lagSeconds: number): void {
    this.checkpointLagSeconds.observe({}, lagSeconds)
  }

  /** The exposition, with the process and Node metrics (watched from the first scrape on). */
  exposition(): { body: string; contentType: string } {
    if (!this.processMetrics) {
      registerProcessMetrics(this.registry)
      this.processMetrics = true
    }
    return { body: this.registry.exposition(), contentType: this.registry.contentType }
  }
}
