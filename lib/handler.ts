import type { AppContext } from './context.ts'
import { contextFromEnvironment, isAppContext } from './app.ts'
import { createDispatcher, type Dispatcher } from './http/dispatcher.ts'
import type { FunctionSpec } from './http/function-spec.ts'

/** A function in the shape FaaS platforms accept (`export default { fetch }`), with its spec. */
export interface FaasFunction extends FunctionSpec {
  /**
   * Answers `request` alone, with request ids, problems, CORS and HEAD as the server gives them.
   * `context` is an AppContext in tests; anything else (a platform's env) means "build one from
   * the environment".
   */
  fetch(request: Request, context?: unknown): Promise<Response>
}

export function defineFunction(spec: FunctionSpec): FaasFunction {
  const dispatchers = new WeakMap<AppContext, Dispatcher>()
  const fn: FaasFunction = {
    ...spec,
    async fetch(request, context) {
      const app = isAppContext(context) ? context : await contextFromEnvironment()
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
