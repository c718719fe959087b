import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'

/** DELETE /v1/collections/{id}: the collection goes; its files stay. */
export default defineFunction({
  name: 'collection-delete',
  method: 'DELETE',
  path: '/v1/collections/:id',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    if (!id || !(await app.database.documents.deleteCollection(id, principal.userId))) throw noSuch('collection', params.id!)
    return new Response(null, { status: 204 })
  },
})
