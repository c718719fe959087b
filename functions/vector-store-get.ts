import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { POLL_AFTER, vectorStoreObject } from '../lib/documents/vector-stores.ts'

/** GET /v1/vector_stores/{id}: one of the caller's collections as a vector store, with its file counts. */
export default defineFunction({
  name: 'vector-store-get',
  method: 'GET',
  path: '/v1/vector_stores/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const documents = app.database.documents
    const collection = id && (await documents.getCollection(id, principal.userId))
    if (!collection) throw noSuch('collection', params.id!)
    return Response.json(vectorStoreObject(collection, (await documents.collectionFiles(collection.id, principal.userId)) ?? []), { headers: POLL_AFTER })
  },
})
