import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { responseObject } from '../lib/openai/response-run.ts'
import { followResponse, ownedResponse } from '../lib/openai/responses.ts'
import { parseInput, queryOf } from '../lib/http/validate.ts'

const Query = v.looseObject({
  stream: v.optional(v.picklist(['true', 'false'])),
  starting_after: v.optional(v.pipe(v.string(), v.regex(/^\d{1,9}$/, 'must be a sequence number'), v.transform(Number))),
})

/**
 * GET /v1/responses/{id}: the response; with `stream=true` its events, from the start or after
 * `starting_after`, then live while it runs (also after a restart, for one that has ended).
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
    if (query.stream !== 'true') return Response.json(responseObject(running?.run?.record ?? stored))
    return followResponse(app, principal, stored.id, query.starting_after ?? -1)
  },
})
