import type { Context, Span as OtelSpan, SpanContext as OtelSpanContext } from '@opentelemetry/api'
import type { ReadableSpan, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace'
import type { Logger } from './log.ts'
import { currentSpan, type SpanAttributes, type SpanContext, type SpanOptions, type Tracer, type TraceSpan, type TracingSettings } from './tracing.ts'

/**
 * The OpenTelemetry side of tracing (lib/observability/tracing.ts says what it is): the official
 * SDK and OTLP/HTTP exporters, imported here only, and only when tracing is on.
 */


export interface OtelOptions {
  version: string
  instanceId: string
  log: Logger
  /** Told of spans exported, dropped (the queue was full) and lost (an export failed). */
  counted(outcome: 'exported' | 'dropped' | 'lost', count: number): void
}

/** The longest a shutdown waits for the last spans to be exported. */
const SHUTDOWN_FLUSH_MS = 5_000

/**
 * A batching processor with a bounded queue: a span that finds it full is dropped and counted,
 * so a collector that is down or slow costs memory up to OTEL_BSP_MAX_QUEUE_SIZE spans and never blocks a
 * request. One export at a time; a failed one is counted and not retried.
 */
class BoundedBatchProcessor implements SpanProcessor {
  private queue: ReadableSpan[] = []
  private exporting: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private lastFailureLog = 0

  private readonly exporter: SpanExporter
  private readonly options: OtelOptions
  /** ExportResultCode.SUCCESS. */
  private readonly success: number
  /** Spans kept at most (past it new ones are dropped and counted), per export, and the wait before one. */
  private readonly maxQueue: number
  private readonly batch: number
  private readonly delayMs: number

  constructor(exporter: SpanExporter, options: OtelOptions, success: number, settings: TracingSettings) {
    this.exporter = exporter
    this.options = options
    this.success = success
    this.maxQueue = settings.maxQueueSize
    this.batch = settings.maxExportBatchSize
    this.delayMs = settings.scheduleDelayMs
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & 1) === 0) return
    if (this.queue.length >= this.maxQueue) {
      this.options.counted('dropped', 1)
      return
    }
    this.queue.push(span)
    if (this.queue.length >= this.batch) this.flushSoon(0)
    else this.flushSoon(this.delayMs)
  }

  private flushSoon(delayMs: number): void {
    if (this.timer && delayMs > 0) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.exportNext()
    }, delayMs)
    this.timer.unref()
  }

  /** Exports one batch (after the one under way), then schedules the next if more wait. */
  private exportNext(): Promise<void> {
    this.exporting ??= (async () => {
      try {
        while (this.queue.length) {
          const batch = this.queue.splice(0, this.batch)
          const code = await new Promise<number>((resolve) => this.exporter.export(batch, (result) => resolve(result.code)))
          if (code === this.success) this.options.counted('exported', batch.length)
          else this.failed(batch.length)
          if (this.queue.length < this.batch) break
        }
      } finally {
        this.exporting = undefined
      }
      if (this.queue.length) this.flushSoon(this.delayMs)
    })()
    return this.exporting
  }

  private failed(count: number): void {
    this.options.counted('lost', count)
    // Once a minute at most: a collector that is down would otherwise fill the log.
    if (Date.now() - this.lastFailureLog < 60_000) return
    this.lastFailureLog = Date.now()
    this.options.log.warn('trace export failed', { spans: count, reason: 'the collector did not take them (down, slow or refusing); later spans are dropped past the queue' })
  }

  async forceFlush(): Promise<void> {
    clearTimeout(this.timer)
    while (this.queue.length || this.exporting) await this.exportNext()
  }

  async shutdown(): Promise<void> {
    await this.forceFlush()
    await this.exporter.shutdown()
  }
}

/** The tracer over OpenTelemetry's SDK, exporting to `settings.endpoint`. */
export async function startOtelTracer(settings: TracingSettings, options: OtelOptions): Promise<Tracer> {
  const [api, sdk, { resourceFromAttributes }, { ExportResultCode }, exporterModule] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
    settings.protocol === 'http/json' ? import('@opentelemetry/exporter-trace-otlp-http') : import('@opentelemetry/exporter-trace-otlp-proto'),
  ])
  const ratio = Number(settings.samplerArg ?? 1)
  const root = settings.sampler.endsWith('always_off') ? new sdk.AlwaysOffSampler() : settings.sampler.endsWith('traceidratio') ? new sdk.TraceIdRatioBasedSampler(ratio) : new sdk.AlwaysOnSampler()
  const sampler = settings.sampler.startsWith('parentbased_') ? new sdk.ParentBasedSampler({ root }) : root
  const exporter = new exporterModule.OTLPTraceExporter({ url: settings.endpoint, headers: settings.headers, timeoutMillis: settings.exportTimeoutMs, concurrencyLimit: 1 })
  const processor = new BoundedBatchProcessor(exporter, options, ExportResultCode.SUCCESS, settings)
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({
      ...settings.resourceAttributes,
      'service.name': settings.serviceName,
      'service.version': options.version,
      'service.instance.id': options.instanceId,
    }),
    sampler,
    spanProcessors: [processor],
  })
  const tracer = provider.getTracer('chat-ollama', options.version)
  const otelOf = new WeakMap<TraceSpan, OtelSpan>()

  const clean = (attributes: SpanAttributes | undefined) =>
    Object.fromEntries(Object.entries(attributes ?? {}).filter((entry): entry is [string, NonNullable<SpanAttributes[string]>] => entry[1] !== undefined && entry[1] !== null))
  const remote = (context: SpanContext): OtelSpanContext => ({ traceId: context.traceId, spanId: context.spanId, traceFlags: context.sampled ? 1 : 0, isRemote: true })
  const parentContext = (parent: SpanContext | null | undefined): Context => {
    if (parent === null) return api.ROOT_CONTEXT
    if (parent) return api.trace.setSpanContext(api.ROOT_CONTEXT, remote(parent))
    const current = currentSpan.getStore()
    const otel = current && otelOf.get(current)
    return otel ? api.trace.setSpan(api.ROOT_CONTEXT, otel) : api.ROOT_CONTEXT
  }
  const KINDS = { internal: api.SpanKind.INTERNAL, server: api.SpanKind.SERVER, client: api.SpanKind.CLIENT }

  const start = (name: string, spanOptions: SpanOptions = {}): TraceSpan => {
    const otel = tracer.startSpan(name, {
      kind: KINDS[spanOptions.kind ?? 'internal'],
      attributes: clean(spanOptions.attributes),
      links: (spanOptions.links ?? []).map((link) => ({ context: remote(link) })),
    }, parentContext(spanOptions.parent))
    const own = otel.spanContext()
    const span: TraceSpan = {
      context: { traceId: own.traceId, spanId: own.spanId, sampled: (own.traceFlags & 1) === 1 },
      setAttributes: (attributes) => void otel.setAttributes(clean(attributes)),
      addEvent: (eventName, attributes) => void otel.addEvent(eventName, clean(attributes)),
      rename: (newName) => void otel.updateName(newName),
      fail: (error) => {
        const { name: type, message } = error instanceof Error ? error : { name: 'Error', message: String(error) }
        otel.setStatus({ code: api.SpanStatusCode.ERROR, message: message.slice(0, 500) })
        otel.addEvent('exception', { 'exception.type': type, 'exception.message': message.slice(0, 500) })
      },
      end: () => otel.end(),
    }
    otelOf.set(span, otel)
    return span
  }

  return {
    enabled: true,
    captureContent: settings.captureContent,
    start,
    within: (span, work) => currentSpan.run(span, work),
    current: () => currentSpan.getStore(),
    async span(name, spanOptions, work) {
      const span = start(name, spanOptions)
      try {
        return await currentSpan.run(span, () => work(span))
      } catch (error) {
        span.fail(error)
        throw error
      } finally {
        span.end()
      }
    },
    // What waits goes out at shutdown, for SHUTDOWN_FLUSH_MS at most: a collector that is down does not hold the stop.
    shutdown: () => Promise.race([provider.shutdown(), new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_FLUSH_MS).unref())]),
  }
}
