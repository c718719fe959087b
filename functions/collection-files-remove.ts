import { defineFunction } from '../lib/handler.ts'
import { removeFromCollection } from '../lib/documents/files-api.ts'

/** DELETE /v1/collections/{id}/files/{file_id}: takes the file out of the collection (the file stays). */
export default defineFunction({
  name: 'collection-files-remove',
  method: 'DELETE',
  path: '/v1/collections/:id/files/:file_id',
  async handle(_request, { app, params, principal }) {
    await removeFromCollection(app.database.documents, principal.userId, params.id!, params.file_id!)
    return new Response(null, { status: 204 })
  },
})
