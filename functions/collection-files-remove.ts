import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'

/** DELETE /v1/collections/{id}/files/{file_id}: takes the file out of the collection (the file stays). */
export default defineFunction({
  name: 'collection-files-remove',
  method: 'DELETE',
  path: '/v1/collections/:id/files/:file_id',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const fileId = idOf(params.file_id)
    const documents = app.database.documents
    if (!id || !(await documents.getCollection(id, principal.userId))) throw noSuch('collection', params.id!)
    if (!fileId || !(await documents.removeFromCollection(id, fileId, principal.userId))) throw noSuch('file', params.file_id!)
    return new Response(null, { status: 204 })
  },
})
