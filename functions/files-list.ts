import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { fileObject, idOf } from '../lib/documents/files-api.ts'
import { openAIList } from '../lib/openai/wire.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.looseObject({
  limit: queryInteger(1, 10_000, 10_000),
  after: v.optional(v.string()),
  purpose: v.optional(v.pipe(v.string(), v.maxLength(64))),
  order: v.optional(v.picklist(['desc'], 'only desc (newest first) is supported')),
})

/** GET /v1/files: the caller's files, newest first, as OpenAI lists them (`limit`, `after`, `purpose`). */
export default defineFunction({
  name: 'files-list',
  method: 'GET',
  path: '/v1/files',
  errors: 'openai',
  async handle(_request, { app, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const after = query.after === undefined ? undefined : (idOf(query.after) ?? '')
    const files = await app.database.documents.listFiles(principal.userId, { limit: query.limit + 1, after, purpose: query.purpose })
    return Response.json(openAIList(files.slice(0, query.limit).map(fileObject), files.length > query.limit))
  },
})
