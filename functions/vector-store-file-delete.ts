import { defineFunction } from '../lib/handler.ts'
import { removeFromCollection } from '../lib/documents/files-api.ts'

/** DELETE /v1/vector_stores/{id}/files/{file_id}: takes the file out of the store; the file stays (as with OpenAI). */
export default defineFunction({
  name: 'vector-store-file-delete',
  method: 'DELETE',
  path: '/v1/vector_stores/:id/files/:file_id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const fileId = await removeFromCollection(app.database.documents, principal.userId, params.id!, params.file_id!)
    return Response.json({ id: fileId, object: 'vector_store.file.deleted', deleted: true })
  },
})
