import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { responseObject } from '../lib/openai/response-run.ts'
import { followResponse, ownedResponse } from '../lib/openai/responses.ts'
import { parseInput, queryOf } from '../lib/http/validate.ts'
import type { StoredResponse } from '../lib/store/response-store.ts'

const Query = v.looseObject({
  stream: v.optional(v.picklist(['true', 'false'])),
  starting_after: v.optional(v.pipe(v.string(), v.regex(/^\d{1,9}$/, 'must be a sequence number'), v.transform(Number))),
  // `include[]=…` as the SDKs write it, or `include=…`.
  include: v.optional(v.union([v.string(), v.pipe(v.array(v.string()), v.maxLength(16))])),
  'include[]': v.optional(v.union([v.string(), v.pipe(v.array(v.string()), v.maxLength(16))])),
})

/** The response with `include` as this request asks, besides what its creation asked. */
function withInclude(response: StoredResponse, asked: string[]): StoredResponse {
  if (asked.length === 0) return response
  return { ...response, params: { ...response.params, include: [...(response.params.include ?? []), ...asked] } }
}

/**
 * GET /v1/responses/{id}: the response; with `stream=true` its events, from the start or after
 * `starting_after`, then live while it runs (also after a restart, for one that has ended).
 * `include=file_search_call.results` shows a file search's results (so does asking at creation).
 */
export default defineFunction({
  name: 'openai-responses-get',
  method: 'GET',
  path: '/v1/responses/:id',
  errors: 'openai',
  async handle(_request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const stored = await ownedResponse(app, principal, params.id!)
    const running = app.responses.registry.get(stored.id)
    const include = [query.include ?? [], query['include[]'] ?? []].flat()
    if (query.stream !== 'true') return Response.json(responseObject(withInclude(running?.run?.record ?? stored, include)))
    return followResponse(app, principal, stored.id, query.starting_after ?? -1)
  },
})
