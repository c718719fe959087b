import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'

/** DELETE /v1/files/{id}: the file, its place in collections, and (in the background) its chunks and vectors. */
export default defineFunction({
  name: 'files-delete',
  method: 'DELETE',
  path: '/v1/files/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    if (!id || !(await app.database.documents.deleteFile(id, principal.userId))) throw noSuch('file', params.id!)
    // Its chunks go when ingestion is next idle.
    app.ingestion.wake()
    return Response.json({ id, object: 'file', deleted: true })
  },
})
