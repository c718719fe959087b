import { defineFunction } from '../lib/handler.ts'
import { fileObject, idOf, noSuch } from '../lib/documents/files-api.ts'

/** GET /v1/files/{id}: one of the caller's files, with how far its ingestion is. */
export default defineFunction({
  name: 'files-get',
  method: 'GET',
  path: '/v1/files/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const file = id && (await app.database.documents.getFile(id, principal.userId))
    if (!file) throw noSuch('file', params.id!)
    return Response.json(fileObject(file))
  },
})
