import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { retrieve } from '../lib/documents/retrieval.ts'
import { searchResultObject } from '../lib/documents/vector-stores.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { unsupported } from '../lib/openai/wire.ts'

const Body = v.looseObject({
  query: v.union([v.pipe(v.string(), v.trim(), v.nonEmpty(), v.maxLength(2000)), v.pipe(v.array(v.pipe(v.string(), v.maxLength(2000))), v.minLength(1), v.maxLength(10))]),
  max_num_results: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(50)), 10),
  filters: v.optional(v.unknown()),
  rewrite_query: v.optional(v.boolean()),
})

/** POST /v1/vector_stores/{id}/search: the store's retrieval (hybrid, docs/documents.md) in OpenAI's search page shape. */
export default defineFunction({
  name: 'vector-store-search',
  method: 'POST',
  path: '/v1/vector_stores/:id/search',
  errors: 'openai',
  async handle(request, { app, params, principal }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    if (body.filters != null) throw unsupported('filters', 'Attribute filters are not supported: files here keep no attributes.')
    if (body.rewrite_query) throw unsupported('rewrite_query', 'Queries are searched as they are written here.')
    const id = idOf(params.id)
    const files = id && (await app.database.documents.collectionFiles(id, principal.userId))
    if (!files) throw noSuch('collection', params.id!)
    const query = typeof body.query === 'string' ? body.query : body.query.join(' ')
    const results = await retrieve(app, files, query, body.max_num_results)
    return Response.json({ object: 'vector_store.search_results.page', search_query: typeof body.query === 'string' ? [body.query] : body.query, data: results.map(searchResultObject), has_more: false, next_page: null })
  },
})
