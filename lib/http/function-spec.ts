import type { Access, Principal } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import type { Config } from '../shared/config.ts'

export type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'

/** What a handler gets besides its Request. */
export interface RequestContext {
  app: AppContext
  params: Record<string, string>
  url: URL
  requestId: string
  /** Who the request acts for; every stored thing it touches must belong to `principal.userId`. */
  principal: Principal
}

/** One endpoint: where it is mounted and how it answers. */
export interface FunctionSpec {
  /** The bundle's name: dist/functions/<name>.mjs. */
  name: string
  method: Method
  /** An itty-router path pattern, such as `/v1/sessions/:id`. */
  path: string
  /** Further paths answered the same way (the page's function serves `/` and `/assets/*`). */
  alsoAt?: string[]
  /** Who may call it; `user` when not said. */
  access?: Access
  /** How its errors are answered: RFC 7807 problems, or OpenAI's `{"error": …}` for the OpenAI-compatible routes. */
  errors?: 'problem' | 'openai'
  /** Takes multipart/form-data bodies besides JSON (an upload). */
  multipart?: boolean
  /** A body limit of its own, above MAX_BODY_BYTES (for a path without parameters). */
  maxBodyBytes?: (config: Config) => number
  handle(request: Request, context: RequestContext): Response | Promise<Response>
}
