import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'

/** DELETE /v1/vector_stores/{id}: the collection goes; its files stay (as with OpenAI). */
export default defineFunction({
  name: 'vector-store-delete',
  method: 'DELETE',
  path: '/v1/vector_stores/:id',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    if (!id || !(await app.database.documents.deleteCollection(id, principal.userId))) throw noSuch('collection', params.id!)
    return Response.json({ id, object: 'vector_store.deleted', deleted: true })
  },
})
