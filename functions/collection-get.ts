import { defineFunction } from '../lib/handler.ts'
import { collectionObject, fileObject, idOf, noSuch } from '../lib/documents/files-api.ts'

/** GET /v1/collections/{id}: one of the caller's collections with its files, newest added first. */
export default defineFunction({
  name: 'collection-get',
  method: 'GET',
  path: '/v1/collections/:id',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const documents = app.database.documents
    const collection = id && (await documents.getCollection(id, principal.userId))
    const files = collection && (await documents.collectionFiles(collection.id, principal.userId))
    if (!collection || !files) throw noSuch('collection', params.id!)
    return Response.json({ ...collectionObject(collection), files: files.map(fileObject) })
  },
})
