import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { POLL_AFTER, vectorStoreFileObject } from '../lib/documents/vector-stores.ts'

/** GET /v1/vector_stores/{id}/files/{file_id}: a file of the store with its status (what `createAndPoll` asks). */
export default defineFunction({
  name: 'vector-store-file-get',
  method: 'GET',
  path: '/v1/vector_stores/:id/files/:file_id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const files = id && (await app.database.documents.collectionFiles(id, principal.userId))
    if (!files) throw noSuch('collection', params.id!)
    const file = files.find((candidate) => candidate.id === idOf(params.file_id))
    if (!file) throw noSuch('file', params.file_id!)
    return Response.json(vectorStoreFileObject(id, file), { headers: POLL_AFTER })
  },
})
