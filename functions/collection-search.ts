import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { retrieve } from '../lib/documents/retrieval.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.looseObject({
  q: v.pipe(v.string('q is required'), v.trim(), v.nonEmpty('q must not be empty'), v.maxLength(2000, 'q must be at most 2000 characters')),
  limit: queryInteger(1, 50, 5),
})

/**
 * GET /v1/collections/{id}/search?q=: the chunks of the collection's files that a chat would be
 * given for `q` (hybrid retrieval, docs/documents.md), without a model.
 */
export default defineFunction({
  name: 'collection-search',
  method: 'GET',
  path: '/v1/collections/:id/search',
  async handle(_request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const id = idOf(params.id)
    const files = id && (await app.database.documents.collectionFiles(id, principal.userId))
    if (!files) throw noSuch('collection', params.id!)
    return Response.json({ query: query.q, results: await retrieve(app, files, query.q, query.limit) })
  },
})
