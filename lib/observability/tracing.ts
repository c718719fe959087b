import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Tracing (docs/tracing.md): spans for a request, its store writes, its context plan, each Ollama
 * call, retrieval and each tool call, exported with OpenTelemetry over OTLP/HTTP. This is the
 * face the rest of the code sees; the OpenTelemetry packages (lib/observability/otel.ts) are loaded
 * only when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set. Off, every
 * call here is a plain function call that records nothing.
 */

export type SpanValue = string | number | boolean | string[] | number[]
export type SpanAttributes = Record<string, SpanValue | undefined | null>

/** A span's place in a trace, as W3C Trace Context writes it. */
export interface SpanContext {
  traceId: string
  spanId: string
  sampled: boolean
}

export interface TraceSpan {
  setAttributes(attributes: SpanAttributes): void
  addEvent(name: string, attributes?: SpanAttributes): void
  /** Its name once more is known (a request's route). */
  rename(name: string): void
  /** Marks the span failed (status ERROR) with the error's name and message. */
  fail(error: unknown): void
  end(): void
  /** Undefined when tracing is off (or the span is not recorded). */
  readonly context: SpanContext | undefined
}

export interface SpanOptions {
  kind?: 'internal' | 'server' | 'client'
  attributes?: SpanAttributes
  /** Its parent: the current span when not given; `null` starts a new trace. */
  parent?: SpanContext | null
  /** Spans it follows from without being their child (a reply that outlives its request). */
  links?: SpanContext[]
}

export interface Tracer {
  readonly enabled: boolean
  /** Whether message text, prompts and tool arguments may go in spans (OTEL_CAPTURE_CONTENT=true). */
  readonly captureContent: boolean
  /** A span made current for `work` (its children find it), ended when `work` settles; failed when it throws. */
  span<T>(name: string, options: SpanOptions, work: (span: TraceSpan) => Promise<T>): Promise<T>
  /** A span the caller ends, not made current: use `within` to run work under it. */
  start(name: string, options?: SpanOptions): TraceSpan
  /** Runs `work` with `span` current. */
  within<T>(span: TraceSpan, work: () => T): T
  /** The current span, if any. */
  current(): TraceSpan | undefined
  /** Sends what is waiting and stops (a clean shutdown). */
  shutdown(): Promise<void>
}

const NOOP_SPAN: TraceSpan = { setAttributes() {}, addEvent() {}, rename() {}, fail() {}, end() {}, context: undefined }

/** Tracing off: nothing is recorded, nothing is kept. */
export const NO_TRACING: Tracer = {
  enabled: false,
  captureContent: false,
  span: (_name, _options, work) => work(NOOP_SPAN),
  start: () => NOOP_SPAN,
  within: (_span, work) => work(),
  current: () => undefined,
  shutdown: async () => {},
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/

/**
 * The parent a `traceparent` header names, when it is a valid one (W3C Trace Context): version
 * 00 exactly as long as its spec says, a later version at least that long, never `ff`; trace and
 * span ids not all zeros. Anything else is ignored (the request starts a trace of its own).
 */
export function parseTraceparent(header: string | null | undefined): SpanContext | undefined {
  if (!header || header.length > 512) return undefined
  const match = TRACEPARENT.exec(header.trim())
  if (!match) return undefined
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined]
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return { traceId, spanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 }
}

/** `span`'s context as a `traceparent` header value. */
export const traceparentOf = (context: SpanContext): string => `00-${context.traceId}-${context.spanId}-${context.sampled ? '01' : '00'}`

/** The current span's `traceparent`, for a request this one makes (to Ollama, to an MCP server). */
export function outgoingTraceparent(tracer: Tracer): string | undefined {
  const context = tracer.current()?.context
  return context && traceparentOf(context)
}

/** What the settings of OpenTelemetry's standard variables make of tracing: null when off. */
export interface TracingSettings {
  /** The traces endpoint, whole (…/v1/traces). */
  endpoint: string
  protocol: 'http/protobuf' | 'http/json'
  headers: Record<string, string>
  serviceName: string
  /** OTEL_RESOURCE_ATTRIBUTES, read. */
  resourceAttributes: Record<string, string>
  sampler: string
  samplerArg: string | undefined
  captureContent: boolean
  /** The batching (OTEL_BSP_*): spans kept at most while the collector is away, per export, the wait before one, an export's time limit. */
  maxQueueSize: number
  maxExportBatchSize: number
  scheduleDelayMs: number
  exportTimeoutMs: number
}

/**
 * Tracing's settings from the environment: on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (whole) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) is set, unless OTEL_SDK_DISABLED or
 * OTEL_TRACES_EXPORTER=none. Throws an Error naming a bad value's variable.
 */
export function tracingSettings(env: Record<string, string | undefined>): TracingSettings | null {
  const value = (name: string) => env[name]?.trim() || undefined
  if (value('OTEL_SDK_DISABLED') === 'true' || value('OTEL_TRACES_EXPORTER') === 'none') return null
  const whole = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  const base = value('OTEL_EXPORTER_OTLP_ENDPOINT')
  if (!whole && !base) return null
  const endpoint = whole ?? `${base!.replace(/\/+$/, '')}/v1/traces`
  if (!URL.canParse(endpoint) || !/^https?:$/.test(new URL(endpoint).protocol)) throw new Error(`${whole ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT'} must be an http(s) URL`)
  const protocol = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf'
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') throw new Error('OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or http/json (grpc is not supported)')
  const sampler = value('OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on'
  if (!SAMPLERS.includes(sampler)) throw new Error(`OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')}`)
  const samplerArg = value('OTEL_TRACES_SAMPLER_ARG')
  if (samplerArg !== undefined && sampler.endsWith('traceidratio') && !(Number(samplerArg) >= 0 && Number(samplerArg) <= 1)) throw new Error('OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1')
  const headers = keyValues(value('OTEL_EXPORTER_OTLP_TRACES_HEADERS') ?? value('OTEL_EXPORTER_OTLP_HEADERS'), 'OTEL_EXPORTER_OTLP_HEADERS')
  const resourceAttributes = keyValues(value('OTEL_RESOURCE_ATTRIBUTES'), 'OTEL_RESOURCE_ATTRIBUTES')
  const wholeNumber = (name: string, fallback: number, max: number) => {
    const text = value(name)
    if (text === undefined) return fallback
    if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new Error(`${name} must be a whole number from 1 to ${max}`)
    return Number(text)
  }
  const maxQueueSize = wholeNumber('OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1_000_000)
  return {
    endpoint, protocol, headers, serviceName: value('OTEL_SERVICE_NAME') ?? 'chat-ollama', resourceAttributes, sampler, samplerArg, captureContent: value('OTEL_CAPTURE_CONTENT') === 'true',
    maxQueueSize,
    // 64, not OpenTelemetry's 512: a batch is serialized on the event loop, and 512 spans hold it
    // about 26 ms on the 2-core build machine, 64 about 4 ms (docs/tracing.md).
    maxExportBatchSize: Math.min(wholeNumber('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 64, 1_000_000), maxQueueSize),
    scheduleDelayMs: wholeNumber('OTEL_BSP_SCHEDULE_DELAY', 5000, 3_600_000),
    exportTimeoutMs: wholeNumber('OTEL_BSP_EXPORT_TIMEOUT', 30_000, 3_600_000),
  }
}

/** `key=value` pairs, comma-separated, values percent-encoded (OpenTelemetry's form); throws naming `name` for a bad escape. */
function keyValues(text: string | undefined, name: string): Record<string, string> {
  try {
    return Object.fromEntries((text ?? '').split(',').flatMap((pair) => {
      const at = pair.indexOf('=')
      return at > 0 ? [[pair.slice(0, at).trim(), decodeURIComponent(pair.slice(at + 1).trim())]] : []
    }))
  } catch {
    throw new Error(`${name} must be key=value pairs separated by commas, values percent-encoded`)
  }
}

export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']

/** The span a piece of work runs under, for the OpenTelemetry tracer (lib/observability/otel.ts). */
export const currentSpan = new AsyncLocalStorage<TraceSpan>()

/**
 * The app's tracer: off until `use` gives it OpenTelemetry's (lib/app.ts startTracing, once the
 * packages are loaded), so that what holds it from the start (the Ollama pool, the MCP servers)
 * traces from then on.
 */
export class Tracing implements Tracer {
  private impl: Tracer = NO_TRACING

  use(impl: Tracer): void {
    this.impl = impl
  }

  get enabled(): boolean {
    return this.impl.enabled
  }

  get captureContent(): boolean {
    return this.impl.captureContent
  }

  span<T>(name: string, options: SpanOptions, work: (span: TraceSpan) => Promise<T>): Promise<T> {
    return this.impl.span(name, options, work)
  }

  start(name: string, options?: SpanOptions): TraceSpan {
    return this.impl.start(name, options)
  }

  within<T>(span: TraceSpan, work: () => T): T {
    return this.impl.within(span, work)
  }

  current(): TraceSpan | undefined {
    return this.impl.current()
  }

  shutdown(): Promise<void> {
    return this.impl.shutdown()
  }
}

/** `work` (synchronous) as a span, told what `describe` makes of its result. */
export function spanSync<T>(tracer: Tracer, name: string, work: () => T, describe: (result: T) => SpanAttributes): T {
  if (!tracer.enabled) return work()
  const span = tracer.start(name)
  try {
    const result = work()
    span.setAttributes(describe(result))
    return result
  } catch (error) {
    span.fail(error)
    throw error
  } finally {
    span.end()
  }
}

/** The trace and span ids a log line of traced work carries. */
export function traceLogFields(): { trace_id: string; span_id: string } | undefined {
  const context = currentSpan.getStore()?.context
  return context && { trace_id: context.traceId, span_id: context.spanId }
}
