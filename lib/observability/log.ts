import type { LogLevel } from '../shared/config.ts'

export type LogFields = Record<string, unknown>

export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface LoggerOptions {
  level: LogLevel
  format: 'json' | 'text'
  write?: (line: string) => void
}

const pendingLines: string[] = []
let flushScheduled = false

function flushStdout(): void {
  flushScheduled = false
  if (pendingLines.length === 0) return
  process.stdout.write(pendingLines.join(''))
  pendingLines.length = 0
}

/**
 * Lines for stdout, written once per turn of the event loop: stdout is a pipe or a file, where
 * each write is a system call, and a busy server logs a line per request.
 */
function writeStdout(line: string): void {
  pendingLines.push(line)
  if (flushScheduled) return
  flushScheduled = true
  setImmediate(flushStdout)
}
// What is still pending when the process exits (a clean stop, an uncaught error) is written then.
process.on('exit', flushStdout)

/** Fields every line of the work under way carries (the trace it belongs to: lib/observability/tracing.ts), set when tracing starts. */
export const logContext: { fields: (() => LogFields | undefined) | undefined } = { fields: undefined }

/** One line per entry on stdout: JSON for collectors, `time level message key=value` for a terminal. */
export function createLogger({ level, format, write = writeStdout }: LoggerOptions): Logger {
  const threshold = SEVERITY[level]
  const emit = (entryLevel: LogLevel, message: string, given: LogFields = {}) => {
    if (SEVERITY[entryLevel] < threshold) return
    const context = logContext.fields?.()
    const fields = context ? { ...given, ...context } : given
    const time = new Date().toISOString()
    if (format === 'json') {
      write(`${JSON.stringify({ time, level: entryLevel, msg: message, ...fields }, errorReplacer)}\n`)
      return
    }
    const pairs = Object.entries(fields)
      .filter(([, value]) => value !== undefined)
      .map(([key, value]) => `${key}=${formatTextValue(value)}`)
    write(`${time} ${entryLevel.toUpperCase().padEnd(5)} ${message}${pairs.length ? ` ${pairs.join(' ')}` : ''}\n`)
  }
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  }
}

/** A logger that drops everything, for tests and embedders that bring their own. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value
}

function formatTextValue(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.stack ?? value.message)
  if (typeof value === 'string') return /^[\w.:/@-]+$/.test(value) ? value : JSON.stringify(value)
  return JSON.stringify(value)
}

/** A request's path (or URL) as logs show it: a share link's token is a secret and is not written. */
export const loggedPath = (path: string | undefined): string | undefined => path?.replace(/^\/s\/[^/?#]*/, '/s/{token}')
