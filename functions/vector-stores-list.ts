import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { MAX_COLLECTIONS } from '../lib/documents/collection-input.ts'
import { vectorStoreObject } from '../lib/documents/vector-stores.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'
import { openAIList } from '../lib/openai/wire.ts'

const Query = v.looseObject({ limit: queryInteger(1, 100, 20), after: v.optional(v.string()), order: v.optional(v.picklist(['desc'], 'only desc (newest first) is supported')) })

/** GET /v1/vector_stores: the caller's collections as OpenAI's vector stores, newest first (`limit`, `after`). */
export default defineFunction({
  name: 'vector-stores-list',
  method: 'GET',
  path: '/v1/vector_stores',
  errors: 'openai',
  async handle(_request, { app, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const documents = app.database.documents
    const all = await documents.listCollections(principal.userId, MAX_COLLECTIONS)
    const from = query.after === undefined ? 0 : all.findIndex((collection) => collection.id === query.after) + 1
    const page = all.slice(from, from + query.limit)
    const data = await Promise.all(page.map(async (collection) => vectorStoreObject(collection, (await documents.collectionFiles(collection.id, principal.userId)) ?? [])))
    return Response.json(openAIList(data, from + query.limit < all.length))
  },
})
