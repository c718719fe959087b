import { defineFunction } from '../lib/handler.ts'
import { collectionObject } from '../lib/documents/files-api.ts'
import { MAX_COLLECTIONS } from '../lib/documents/collection-input.ts'

/** GET /v1/collections: the caller's collections, newest first, each with its count of files. */
export default defineFunction({
  name: 'collections-list',
  method: 'GET',
  path: '/v1/collections',
  async handle(_request, { app, principal }) {
    const collections = await app.database.documents.listCollections(principal.userId, MAX_COLLECTIONS)
    return Response.json({ collections: collections.map(collectionObject) })
  },
})
