// The API client: JSON requests, problems (RFC 7807) as errors, Retry-After honoured.
import { showError } from './dom.ts'

interface Problem { status: number; detail: string; title: string }

export class ProblemError extends Error {
  readonly problem: Problem
  readonly retryAfter: number | null
  constructor(problem: Problem, retryAfter: number | null) {
    super(problem.detail)
    this.problem = problem
    this.retryAfter = retryAfter
  }
}

export async function problemOf(response: Response): Promise<ProblemError> {
  let problem: Problem = { status: response.status, title: response.statusText, detail: `The server answered ${response.status}.` }
  try {
    // A problem, or OpenAI's `{"error"}` from the routes OpenAI's clients use too (/v1/models).
    const body = await response.json()
    problem = body.error ? { ...problem, detail: String(body.error.message) } : body
  } catch {}
  const retryAfter = Number(response.headers.get('retry-after'))
  return new ProblemError(problem, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null)
}

export const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000))

/** A JSON request; 429 and 503 are retried after their Retry-After when `retry` allows it. */
export async function api<T>(path: string, init: RequestInit = {}, retries = 2): Promise<T> {
  const response = await fetch(path, { ...init, headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } })
  if (response.ok) return response.status === 204 ? (undefined as T) : response.json()
  // The sign-in ended (signed out elsewhere, key revoked): the reloaded page asks for a key.
  if (response.status === 401) location.reload()
  const error = await problemOf(response)
  if (retries > 0 && (response.status === 429 || response.status === 503) && error.retryAfter) {
    showError(`${error.problem.detail} Retrying in ${error.retryAfter} s…`)
    await sleep(error.retryAfter)
    return api(path, init, retries - 1)
  }
  throw error
}

