import { contextFromEnvironment, isAppContext, type AppContext } from './context.ts'
import { createDispatcher, type Dispatcher } from './dispatcher.ts'

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

/** What a handler gets besides its Request. */
export interface Call {
  app: AppContext
  params: Record<string, string>
  url: URL
  requestId: string
}

export interface FunctionSpec {
  /** The bundle's name: dist/functions/<name>.mjs. */
  name: string
  method: Method
  /** An itty-router path pattern, such as `/v1/sessions/:id`. */
  path: string
  /** Further paths answered the same way (the page's function serves `/` and `/assets/*`). */
  alsoAt?: string[]
  handle(request: Request, call: Call): Response | Promise<Response>
}

/** A function in the shape FaaS platforms accept: `export default { fetch }`. */
export interface ChatFunction extends FunctionSpec {
  /**
   * Answers `request` alone, with request ids, problems, CORS and HEAD as the server gives them.
   * `context` is an AppContext in tests; anything else (a platform's env) means "build one from
   * the environment".
   */
  fetch(request: Request, context?: unknown): Promise<Response>
}

export function defineFunction(spec: FunctionSpec): ChatFunction {
  const dispatchers = new WeakMap<AppContext, Dispatcher>()
  const fn: ChatFunction = {
    ...spec,
    fetch(request, context) {
      const app = isAppContext(context) ? context : contextFromEnvironment()
      let dispatcher = dispatchers.get(app)
      if (!dispatcher) {
        dispatcher = createDispatcher([fn], app)
        dispatchers.set(app, dispatcher)
      }
      return dispatcher.fetch(request)
    },
  }
  return fn
}
