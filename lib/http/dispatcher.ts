import { randomUUID } from 'node:crypto'
import { Router, type IRequest } from 'itty-router'
import type { RateLimitState } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import type { FunctionSpec } from './function-spec.ts'
import { loggedPath } from '../observability/log.ts'
import { parseTraceparent, traceparentOf } from '../observability/tracing.ts'
import { JSON_TYPE } from './body.ts'

const MULTIPART_TYPE = /^multipart\/form-data\s*;/i
import { isAllowedHost, isCrossSite } from '../shared/host-check.ts'
import { openAIErrorResponse } from '../openai/wire.ts'
import { HttpProblem, problemForUnexpected, problemResponse } from '../shared/problem.ts'

export interface Dispatcher {
  fetch(request: Request): Promise<Response>
  /** Counts and logs a request the node:http adapter refused before it became a Request. */
  refused(method: string, problem: HttpProblem): void
}

interface RequestState {
  requestId: string
  url: URL
  startedAt: number
  rateLimit?: RateLimitState
  /** The function that took the request, for metrics and its error format. */
  fn?: FunctionSpec
  /** The kind of the problem answered, if one was. */
  problemKind?: string
  /** Who it acts for, once known (for its span). */
  userId?: string | null
}

const REQUEST_ID = /^[\w.:@\-]{1,128}$/
const EXPOSED_HEADERS = 'x-request-id, retry-after, location, ratelimit, ratelimit-policy, traceresponse'
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const ALLOWED_REQUEST_HEADERS = 'authorization, content-type, last-event-id, x-request-id'
/** Methods counted by name in metrics; any other is `other`, so a client cannot mint label values. */
const COUNTED_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/**
 * Mounts `functions` on an itty-router Router, each at its own method and path, with what every
 * response needs: a request id, RFC 7807 problems for errors, 404 and 405, CORS and HEAD.
 */
export function createDispatcher(functions: FunctionSpec[], app: AppContext): Dispatcher {
  const { config, log } = app
  // Without credentials the server is on loopback, where any web page the user visits can reach it.
  const checkHost = config.auth === 'off'
  const states = new WeakMap<Request, RequestState>()
  const state = (request: Request) => states.get(request)!

  const routes = functions.flatMap((fn) => [fn.path, ...(fn.alsoAt ?? [])].map((path) => ({ fn, path, pattern: patternOf(path) })))
  // OpenAI's clients read `{"error"}`: its routes answer so also before a function took the request (401, 405, 415).
  const isOpenAIPath = (pathname: string) => routes.some(({ fn, pattern }) => fn.errors === 'openai' && pattern.test(pathname))
  const errorResponse = (problem: HttpProblem, request: Request) => {
    const { fn, url, requestId } = state(request)
    const openAI = fn ? fn.errors === 'openai' : isOpenAIPath(url.pathname)
    return openAI ? openAIErrorResponse(problem) : problemResponse(problem, url.pathname, requestId)
  }
  // Uploads (POST /v1/files) take multipart/form-data, as OpenAI's Files API does; only their routes.
  const takesMultipart = (method: string, pathname: string) => routes.some(({ fn, pattern }) => fn.multipart && fn.method === method && pattern.test(pathname))
  const methodsFor = (pathname: string) => {
    const methods = new Set<string>(routes.filter(({ pattern }) => pattern.test(pathname)).map(({ fn }) => fn.method))
    if (methods.has('GET')) methods.add('HEAD')
    return [...methods]
  }

  const router = Router<IRequest, []>({
    before: [
      (request) => {
        const sent = request.headers.get('x-request-id')
        states.set(request, {
          requestId: sent && REQUEST_ID.test(sent) ? sent : randomUUID(),
          url: new URL(request.url),
          startedAt: performance.now(),
        })
      },
      (request) => {
        // itty-router decodes path parameters with decodeURIComponent: a malformed escape is the client's fault.
        try {
          decodeURIComponent(state(request).url.pathname)
        } catch {
          throw new HttpProblem(400, 'validation', 'The path has malformed percent-encoding (a % not followed by the UTF-8 bytes of a character).')
        }
        // A foreign Host on loopback is a page of another site reaching us through DNS rebinding.
        const host = request.headers.get('host') ?? state(request).url.host
        if (checkHost && !isAllowedHost(host, config.allowedHosts)) {
          throw new HttpProblem(403, 'forbidden', 'This server listens on loopback and answers only local host names; add this one to ALLOWED_HOSTS to allow it.')
        }
        // A page of another site can send bodiless writes without a preflight (`mode: 'no-cors'`).
        if (WRITES.has(request.method) && isCrossSite(request, config.corsOrigins)) {
          throw new HttpProblem(403, 'forbidden', 'A change may not come from a page of another site; add its origin to CORS_ORIGINS to allow it.')
        }
        // A form or a cross-site script can send text/plain without a preflight: only JSON changes anything.
        const contentType = request.headers.get('content-type')
        // (A cross-site form was refused above, so an upload route may take multipart.)
        const multipart = contentType !== null && MULTIPART_TYPE.test(contentType) && takesMultipart(request.method, state(request).url.pathname)
        if (contentType !== null && WRITES.has(request.method) && !JSON_TYPE.test(contentType) && !multipart) {
          throw new HttpProblem(415, 'unsupported_media_type', `The body must be application/json, not ${JSON.stringify(contentType)}.`)
        }
      },
    ],
    catch: (error, request) => {
      const problem = problemForUnexpected(error)
      state(request).problemKind = problem.kind
      if (!(error instanceof HttpProblem)) {
        log.error('request failed', { request_id: state(request).requestId, method: request.method, path: loggedPath(state(request).url.pathname), error })
      }
      return errorResponse(problem, request)
    },
    finally: [
      (response: Response | undefined, request) => {
        const current = state(request)
        const { requestId, url, startedAt } = current
        const unroutedAnswer = response ? undefined : unrouted(request, url, methodsFor(url.pathname))
        if (unroutedAnswer instanceof HttpProblem) current.problemKind = unroutedAnswer.kind
        const answer = response ?? (unroutedAnswer instanceof HttpProblem ? errorResponse(unroutedAnswer, request) : unroutedAnswer!)
        const headers = answer.headers
        headers.set('x-request-id', requestId)
        const { rateLimit } = current
        if (rateLimit) {
          headers.set('ratelimit-policy', rateLimit.policy)
          headers.set('ratelimit', `"per-user";r=${rateLimit.answer.remaining};t=${rateLimit.answer.resetSeconds}`)
        }
        // Cross-origin reads only for origins listed exactly in CORS_ORIGINS; never a wildcard.
        const origin = request.headers.get('origin')
        headers.append('vary', 'Origin')
        if (origin && config.corsOrigins.includes(origin)) {
          headers.set('access-control-allow-origin', origin)
          headers.set('access-control-expose-headers', EXPOSED_HEADERS)
        }
        const elapsedMs = performance.now() - startedAt
        const fnName = current.fn?.name ?? 'none'
        app.metrics.request(fnName, COUNTED_METHODS.has(request.method) ? request.method : 'other', answer.status, elapsedMs / 1000)
        if (current.problemKind) app.metrics.problem(current.problemKind, fnName)
        const entry = { request_id: requestId, method: request.method, path: loggedPath(url.pathname), status: answer.status, duration_ms: Math.round(elapsedMs * 10) / 10 }
        if (answer.status >= 500) log.warn('request', entry)
        else log.info('request', entry)
        if (request.method === 'HEAD' && answer.body) {
          // A HEAD answer has the GET's headers and no body; an SSE body would otherwise be pumped forever.
          void answer.body.cancel()
          return new Response(null, { status: answer.status, statusText: answer.statusText, headers })
        }
        return answer
      },
    ],
  })

  for (const { fn, path } of routes) {
    const handler = async (request: IRequest) => {
      const current = state(request)
      current.fn = fn
      const principal = await app.access.principalFor(request, fn.access ?? 'user', (rateLimit) => (current.rateLimit = rateLimit))
      current.userId = principal.userId
      return fn.handle(request, { app, params: request.params, url: current.url, requestId: current.requestId, principal })
    }
    router[fn.method.toLowerCase()]!(path, handler)
    // itty matches methods exactly, so HEAD has to be mounted next to GET.
    if (fn.method === 'GET') router.head(path, handler)
  }

  /**
   * A request as a span (docs/tracing.md): its parent the caller's `traceparent` when valid, its
   * name the route's template, ended when the response body ends (an event stream's last event);
   * `traceresponse` tells the caller its trace.
   */
  const tracedFetch = async (request: Request): Promise<Response> => {
    const { tracer } = app
    const span = tracer.start(request.method, {
      kind: 'server',
      parent: parseTraceparent(request.headers.get('traceparent')) ?? null,
      attributes: { 'http.request.method': request.method, 'url.scheme': new URL(request.url).protocol.slice(0, -1) },
    })
    let response: Response
    try {
      response = await tracer.within(span, () => router.fetch(request))
    } catch (error) {
      span.fail(error)
      span.end()
      throw error
    }
    const current = states.get(request)
    const route = current?.fn ? current.fn.path : undefined
    span.setAttributes({
      'http.route': route,
      'http.response.status_code': response.status,
      // The user's id is a random one: it names nobody.
      'enduser.id': current?.userId ?? undefined,
      'chat_ollama.request_id': current?.requestId,
    })
    if (route) span.setAttributes({ 'chat_ollama.function': current!.fn!.name })
    span.rename(route ? `${request.method} ${route}` : request.method)
    if (response.status >= 500) span.fail(new Error(`answered ${response.status}`))
    if (span.context) response.headers.set('traceresponse', traceparentOf(span.context))
    if (!response.body) {
      span.end()
      return response
    }
    const reader = response.body.getReader()
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await reader.read()
        if (done) {
          controller.close()
          span.end()
        } else controller.enqueue(value)
      },
      cancel(reason) {
        span.addEvent('client gone')
        span.end()
        return reader.cancel(reason)
      },
    })
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }

  return {
    fetch: (request) => (app.tracer.enabled ? tracedFetch(request) : router.fetch(request)),
    refused(method, problem) {
      const counted = COUNTED_METHODS.has(method) ? method : 'other'
      app.metrics.request('none', counted, problem.status, 0)
      app.metrics.problem(problem.kind, 'none')
      log.info('request', { method: counted, status: problem.status, problem: problem.kind })
    },
  }
}

/** The answer for a request no route took: a CORS preflight or OPTIONS, else the 405 or 404 problem. */
function unrouted(request: Request, url: URL, methods: string[]): Response | HttpProblem {
  if (methods.length === 0) return new HttpProblem(404, 'not_found', `Nothing is at ${url.pathname}.`)
  const allow = [...methods, 'OPTIONS'].join(', ')
  if (request.method === 'OPTIONS') {
    const headers = new Headers({ allow })
    if (request.headers.has('access-control-request-method')) {
      headers.set('access-control-allow-methods', allow)
      headers.set('access-control-allow-headers', request.headers.get('access-control-request-headers') ?? ALLOWED_REQUEST_HEADERS)
      headers.set('access-control-max-age', '600')
    }
    return new Response(null, { status: 204, headers })
  }
  return new HttpProblem(405, 'method_not_allowed', `${request.method} is not allowed on ${url.pathname}; use ${allow}.`, { headers: { allow } })
}

/** The same path matching itty-router does, for telling 405 from 404. */
function patternOf(path: string): RegExp {
  const source = path.replace(/\./g, '\\.').replace(/:\w+\+/g, '.+').replace(/:\w+/g, '[^/]+?').replace(/\/\*/g, '(/.*)?')
  return new RegExp(`^${source}/*$`)
}
