import { defineFunction } from '../lib/handler.ts'
import { collectionObject, idOf, noSuch } from '../lib/documents/files-api.ts'
import { CollectionBody } from '../lib/documents/collection-input.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { timestamp } from '../lib/shared/clock.ts'

/** PATCH /v1/collections/{id} `{name}`: renames one of the caller's collections. */
export default defineFunction({
  name: 'collection-update',
  method: 'PATCH',
  path: '/v1/collections/:id',
  async handle(request, { app, params, principal }) {
    const { name } = parseInput(CollectionBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const id = idOf(params.id)
    const collection = id && (await app.database.documents.renameCollection(id, principal.userId, name, timestamp()))
    if (!collection) throw noSuch('collection', params.id!)
    return Response.json(collectionObject(collection))
  },
})
