import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { vectorStoreFileObject } from '../lib/documents/vector-stores.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'
import { openAIList } from '../lib/openai/wire.ts'

const Query = v.looseObject({
  limit: queryInteger(1, 100, 20),
  after: v.optional(v.string()),
  filter: v.optional(v.picklist(['in_progress', 'completed', 'failed', 'cancelled'])),
  order: v.optional(v.picklist(['desc'], 'only desc (newest added first) is supported')),
})

/** GET /v1/vector_stores/{id}/files: its files with their status (`filter`, `limit`, `after`). */
export default defineFunction({
  name: 'vector-store-files-list',
  method: 'GET',
  path: '/v1/vector_stores/:id/files',
  errors: 'openai',
  async handle(_request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const id = idOf(params.id)
    const files = id && (await app.database.documents.collectionFiles(id, principal.userId))
    if (!files) throw noSuch('collection', params.id!)
    const shown = files.filter((file) => query.filter === undefined || file.status === query.filter)
    const from = query.after === undefined ? 0 : shown.findIndex((file) => file.id === query.after) + 1
    return Response.json(openAIList(shown.slice(from, from + query.limit).map((file) => vectorStoreFileObject(id, file)), from + query.limit < shown.length))
  },
})
