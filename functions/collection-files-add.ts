import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { collectionObject, idOf, noSuch } from '../lib/documents/files-api.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { jsonObject, parseInput } from '../lib/http/validate.ts'
import { timestamp } from '../lib/shared/clock.ts'

const Body = jsonObject(v.object({ file_id: v.pipe(v.string(), v.maxLength(64)) }), 'must be an object with file_id')

/** POST /v1/collections/{id}/files `{file_id}`: puts one of the caller's files in one of their collections (once). */
export default defineFunction({
  name: 'collection-files-add',
  method: 'POST',
  path: '/v1/collections/:id/files',
  async handle(request, { app, params, principal }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const documents = app.database.documents
    const id = idOf(params.id)
    const collection = id && (await documents.getCollection(id, principal.userId))
    if (!collection) throw noSuch('collection', params.id!)
    const fileId = idOf(body.file_id)
    if (!fileId || !(await documents.addToCollection(collection.id, fileId, principal.userId, timestamp()))) throw noSuch('file', body.file_id)
    return Response.json(collectionObject((await documents.getCollection(collection.id, principal.userId))!))
  },
})
