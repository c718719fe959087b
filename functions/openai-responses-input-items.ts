import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { openAIList } from '../lib/openai/wire.ts'
import { inputItemObject } from '../lib/openai/response-input.ts'
import { ownedResponse } from '../lib/openai/responses.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.looseObject({
  limit: queryInteger(1, 100, 20),
  order: v.optional(v.picklist(['asc', 'desc'], 'must be asc or desc'), 'desc'),
  after: v.optional(v.string()),
})

/** GET /v1/responses/{id}/input_items: the input the response was given, as OpenAI's items. */
export default defineFunction({
  name: 'openai-responses-input-items',
  method: 'GET',
  path: '/v1/responses/:id/input_items',
  errors: 'openai',
  async handle(_request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const stored = await ownedResponse(app, principal, params.id!)
    const items = stored.input.map(inputItemObject)
    if (query.order === 'desc') items.reverse()
    const start = query.after ? items.findIndex((item) => item.id === query.after) + 1 : 0
    const page = items.slice(start, start + query.limit)
    return Response.json(openAIList(page, start + query.limit < items.length))
  },
})
