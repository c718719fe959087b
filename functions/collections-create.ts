import { randomUUID } from 'node:crypto'
import { defineFunction } from '../lib/handler.ts'
import { collectionObject } from '../lib/documents/files-api.ts'
import { CollectionBody, MAX_COLLECTIONS } from '../lib/documents/collection-input.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { timestamp } from '../lib/shared/clock.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** POST /v1/collections `{name}`: a new, empty collection of the caller's files ("knowledge"). */
export default defineFunction({
  name: 'collections-create',
  method: 'POST',
  path: '/v1/collections',
  async handle(request, { app, principal }) {
    const { name } = parseInput(CollectionBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const documents = app.database.documents
    if ((await documents.listCollections(principal.userId, MAX_COLLECTIONS)).length >= MAX_COLLECTIONS) {
      throw new HttpProblem(429, 'rate_limit', `You have ${MAX_COLLECTIONS} collections, the most one user may keep: delete some first.`)
    }
    const collection = await documents.addCollection(principal.userId, randomUUID(), name, timestamp())
    return Response.json(collectionObject(collection), { status: 201 })
  },
})
