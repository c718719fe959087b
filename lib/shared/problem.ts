export const PROBLEM_TYPE_BASE = 'https://api.chat-ollama.com/errors/'

export type ProblemKind =
  | 'validation'
  | 'model_capability'
  | 'context_overflow'
  | 'context_length_exceeded'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'model_not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'idempotency_mismatch'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limit'
  | 'internal'
  | 'not_implemented'
  | 'shutting_down'
  | 'ollama'
  | 'database'
  | 'tools_unavailable'
  | 'busy'

const TITLES: Record<ProblemKind, string> = {
  validation: 'Invalid request',
  model_capability: 'The model cannot do this',
  context_overflow: 'Message too long for the context',
  context_length_exceeded: 'Conversation too long for the context',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  model_not_found: 'Model not found',
  method_not_allowed: 'Method not allowed',
  conflict: 'Conflict',
  idempotency_mismatch: 'Idempotency-Key reused with another request',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  rate_limit: 'Too many requests',
  internal: 'Internal server error',
  not_implemented: 'Not implemented',
  shutting_down: 'Shutting down',
  ollama: 'Ollama error',
  database: 'Database error',
  tools_unavailable: 'MCP server unavailable',
  busy: 'Server busy',
}

export interface FieldError {
  path: string
  message: string
}

export interface ProblemOptions {
  errors?: FieldError[]
  /** The request field at fault, for OpenAI-style errors (`param`). */
  param?: string
  headers?: Record<string, string>
  cause?: unknown
}

/**
 * An error that is meant for the client: thrown anywhere below a handler, it becomes an RFC 7807
 * response with this status, kind and detail. Any other error becomes a 500 with no detail.
 */
export class HttpProblem extends Error {
  override name = 'HttpProblem'
  readonly status: number
  readonly kind: ProblemKind
  readonly detail: string
  readonly errors: FieldError[] | undefined
  readonly headers: Record<string, string>
  readonly param: string | undefined

  constructor(status: number, kind: ProblemKind, detail: string, options: ProblemOptions = {}) {
    super(detail, { cause: options.cause })
    this.status = status
    this.kind = kind
    this.detail = detail
    this.errors = options.errors
    this.headers = options.headers ?? {}
    this.param = options.param ?? options.errors?.[0]?.path
  }
}

export const noSuchSession = (id: string) => new HttpProblem(404, 'not_found', `No session has the id ${id}.`)
export const shuttingDown = (detail = 'The server is shutting down; try again in a moment.') =>
  new HttpProblem(503, 'shutting_down', detail, { headers: { 'retry-after': '5' } })
export const noRunningReply = (id: string) => new HttpProblem(404, 'not_found', `No reply is being generated in session ${id}.`)

export interface ProblemBody {
  type: string
  title: string
  status: number
  detail: string
  instance: string
  timestamp: string
  request_id: string
  errors?: FieldError[]
}

export function problemBody(problem: HttpProblem, instance: string, requestId: string): ProblemBody {
  return {
    type: PROBLEM_TYPE_BASE + problem.kind,
    title: TITLES[problem.kind],
    status: problem.status,
    detail: problem.detail,
    instance,
    timestamp: new Date().toISOString(),
    request_id: requestId,
    ...(problem.errors ? { errors: problem.errors } : {}),
  }
}

export function problemResponse(problem: HttpProblem, instance: string, requestId: string): Response {
  return new Response(JSON.stringify(problemBody(problem, instance, requestId)), {
    status: problem.status,
    headers: { 'content-type': 'application/problem+json', ...problem.headers },
  })
}

// SQLite result codes (errcode & 0xff) that mean "not now" rather than "this request is wrong":
// BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY.
const SQLITE_UNAVAILABLE = new Set([5, 6, 10, 13, 14, 8])

/**
 * A connection that could not be made or was lost: postgres.js's own codes, and the socket and
 * name-lookup errors of Node it passes on as they are.
 */
const POSTGRES_CONNECTION_ERRORS = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL',
])

/**
 * The problem a client sees for an error that was not meant for it: the detail says what kind of
 * thing failed and never carries the error's own text (stack traces, SQL).
 */
export function problemForUnexpected(error: unknown): HttpProblem {
  if (error instanceof HttpProblem) return error
  const { code, errcode, message, name } = (error ?? {}) as { code?: unknown; errcode?: unknown; message?: unknown; name?: unknown }
  const closedDatabase = code === 'ERR_INVALID_STATE' && /database is not open|finalized/.test(String(message))
  if (closedDatabase || (code === 'ERR_SQLITE_ERROR' && SQLITE_UNAVAILABLE.has(Number(errcode) & 0xff))) {
    return new HttpProblem(503, 'database', 'The database is unavailable; try again shortly.', { headers: { 'retry-after': '1' } })
  }
  if (code === 'ERR_SQLITE_ERROR') return new HttpProblem(500, 'database', 'The database could not complete the request.')
  // postgres.js: a lost or refused connection, or a server that cannot serve now, is "not now".
  if (typeof code === 'string' && (POSTGRES_CONNECTION_ERRORS.has(code) || (name === 'PostgresError' && /^(08|53|57P|40001|40P01)/.test(code)))) {
    return new HttpProblem(503, 'database', 'The database is unavailable; try again shortly.', { headers: { 'retry-after': '1' } })
  }
  if (name === 'PostgresError') return new HttpProblem(500, 'database', 'The database could not complete the request.')
  return new HttpProblem(500, 'internal', 'An unexpected error occurred; the log has the details under this request_id.')
}
