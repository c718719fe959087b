import { readdirSync, readFileSync } from 'node:fs'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'

/**
 * A small Prometheus registry: counters, gauges and histograms with labels, and the text
 * exposition (format 0.0.4). Written here instead of using prom-client, which costs ~190 KiB in
 * every function bundle and ~16 ms of every start (a FaaS cold start included); what the
 * service needs of it is this much.
 */

type Labels = Record<string, string>

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const escapeHelp = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const formatValue = (value: number) => (Number.isFinite(value) ? String(value) : value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN')

function labelText(names: readonly string[], values: readonly string[], extra = ''): string {
  const pairs = names.map((name, index) => `${name}="${escapeLabel(values[index]!)}"`)
  if (extra) pairs.push(extra)
  return pairs.length ? `{${pairs.join(',')}}` : ''
}

interface Metric {
  readonly name: string
  expose(): string
}

abstract class Family<T> implements Metric {
  readonly name: string
  private readonly help: string
  private readonly type: string
  protected readonly labelNames: readonly string[]
  protected readonly series = new Map<string, { values: string[]; state: T }>()

  constructor(name: string, help: string, type: string, labelNames: readonly string[]) {
    this.name = name
    this.help = help
    this.type = type
    this.labelNames = labelNames
  }

  protected stateFor(labels: Labels = {}): T {
    const values = this.labelNames.map((name) => labels[name] ?? '')
    const key = values.join('\u0000')
    let entry = this.series.get(key)
    if (!entry) {
      entry = { values, state: this.initial() }
      this.series.set(key, entry)
    }
    return entry.state
  }

  protected abstract initial(): T
  protected abstract lines(values: string[], state: T): string[]

  expose(): string {
    const head = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`
    return head + [...this.series.values()].flatMap(({ values, state }) => this.lines(values, state)).map((line) => `${line}\n`).join('')
  }
}

/** A counter or a gauge: one number per series; `collect` (if given) sets them at each scrape. */
class ValueFamily extends Family<{ value: number }> {
  private readonly collect: ((family: ValueFamily) => void) | undefined

  constructor(name: string, help: string, type: 'counter' | 'gauge', labelNames: readonly string[], collect?: (family: ValueFamily) => void) {
    super(name, help, type, labelNames)
    this.collect = collect
  }

  set(labels: Labels, value: number): void {
    this.stateFor(labels).value = value
  }

  override expose(): string {
    this.collect?.(this)
    return super.expose()
  }

  protected initial() {
    return { value: 0 }
  }

  protected lines(values: string[], state: { value: number }) {
    return [`${this.name}${labelText(this.labelNames, values)} ${formatValue(state.value)}`]
  }
}

export class Counter extends ValueFamily {
  /** A counter that counts here (inc), or, with `collect`, one read from elsewhere at each scrape (CPU time). */
  constructor(name: string, help: string, labelNames: readonly string[] = [], collect?: (counter: ValueFamily) => void) {
    super(name, help, 'counter', labelNames, collect)
  }

  inc(labels: Labels = {}, by = 1): void {
    this.stateFor(labels).value += by
  }
}

export class Gauge extends ValueFamily {
  constructor(name: string, help: string, labelNames: readonly string[] = [], collect?: (gauge: ValueFamily) => void) {
    super(name, help, 'gauge', labelNames, collect)
  }
}

export class Histogram extends Family<{ counts: number[]; sum: number; count: number }> {
  private readonly buckets: readonly number[]

  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []) {
    super(name, help, 'histogram', labelNames)
    this.buckets = buckets
  }

  observe(labels: Labels, value: number): void {
    const state = this.stateFor(labels)
    const index = this.buckets.findIndex((bound) => value <= bound)
    if (index >= 0) state.counts[index]!++
    state.sum += value
    state.count++
  }

  protected initial() {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 }
  }

  protected lines(values: string[], state: { counts: number[]; sum: number; count: number }) {
    let cumulative = 0
    const lines = this.buckets.map((bound, index) => {
      cumulative += state.counts[index]!
      return `${this.name}_bucket${labelText(this.labelNames, values, `le="${formatValue(bound)}"`)} ${cumulative}`
    })
    lines.push(`${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${state.count}`)
    lines.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(state.sum)}`)
    lines.push(`${this.name}_count${labelText(this.labelNames, values)} ${state.count}`)
    return lines
  }
}

export class Registry {
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8'
  private readonly metrics: Metric[] = []

  register<T extends Metric>(metric: T): T {
    this.metrics.push(metric)
    return metric
  }

  exposition(): string {
    return this.metrics.map((metric) => metric.expose()).join('\n')
  }
}

/**
 * The process and Node metrics Prometheus' Node client exposes by default, under its names:
 * CPU, resident memory, start time, file descriptors, heap, event loop lag and GC pauses.
 */
export function registerProcessMetrics(registry: Registry): void {
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const gc = registry.register(new Histogram('nodejs_gc_duration_seconds', 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.', [0.001, 0.01, 0.1, 1, 2, 5], ['kind']))
  const kinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gc.observe({ kind: kinds[((entry as { detail?: { kind?: number } }).detail)?.kind ?? 0] ?? 'unknown' }, entry.duration / 1000)
  })
  observer.observe({ entryTypes: ['gc'] })
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime())
  const gauge = (name: string, help: string, read: () => number) => registry.register(new Gauge(name, help, [], (g) => g.set({}, read())))
  const cpuCounter = (name: string, help: string, read: () => number) => registry.register(new Counter(name, help, [], (c) => c.set({}, read())))
  cpuCounter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', () => process.cpuUsage().user / 1e6)
  cpuCounter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', () => process.cpuUsage().system / 1e6)
  cpuCounter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', () => {
    const { user, system } = process.cpuUsage()
    return (user + system) / 1e6
  })
  gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => startSeconds)
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss())
  gauge('process_open_fds', 'Number of open file descriptors.', () => {
    try {
      return readdirSync('/proc/self/fd').length
    } catch {
      return Number.NaN
    }
  })
  gauge('process_max_fds', 'Maximum number of open file descriptors.', () => {
    try {
      return Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? Number.NaN)
    } catch {
      return Number.NaN
    }
  })
  gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', () => process.memoryUsage().heapTotal)
  gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', () => process.memoryUsage().heapUsed)
  gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', () => process.memoryUsage().external)
  gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds (mean since the last scrape).', () => {
    const mean = lag.mean / 1e9
    return Number.isNaN(mean) ? 0 : mean
  })
  // Read before the p99 gauge, which starts a new recording.
  gauge('nodejs_eventloop_lag_max_seconds', 'The longest recorded event loop delay (since the last scrape).', () => lag.max / 1e9)
  gauge('nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of the recorded event loop delays (since the last scrape).', () => {
    const p99 = lag.percentile(99) / 1e9
    lag.reset()
    return p99
  })
  registry.register(new Gauge('nodejs_version_info', 'Node.js version info.', ['version', 'major', 'minor', 'patch'], (g) => {
    const [major, minor, patch] = process.versions.node.split('.')
    g.set({ version: process.version, major: major!, minor: minor!, patch: patch! }, 1)
  }))
}
