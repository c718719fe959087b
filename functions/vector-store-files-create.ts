import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { POLL_AFTER, vectorStoreFileObject } from '../lib/documents/vector-stores.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { unsupported } from '../lib/openai/wire.ts'
import { timestamp } from '../lib/shared/clock.ts'

const Body = v.looseObject({ file_id: v.pipe(v.string(), v.maxLength(64)), chunking_strategy: v.optional(v.unknown()), attributes: v.optional(v.unknown()) })

/** POST /v1/vector_stores/{id}/files `{file_id}`: puts one of the caller's files in the store (its ingestion's status is the file's). */
export default defineFunction({
  name: 'vector-store-files-create',
  method: 'POST',
  path: '/v1/vector_stores/:id/files',
  errors: 'openai',
  async handle(request, { app, params, principal }) {
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const strategy = body.chunking_strategy as { type?: unknown } | null | undefined
    if (strategy != null && strategy.type !== 'auto') throw unsupported('chunking_strategy', 'Files are cut by their structure here: chunking_strategy must be auto or left out.')
    if (body.attributes != null && Object.keys(body.attributes as object).length > 0) throw unsupported('attributes', 'Files in vector stores here keep no attributes.')
    const documents = app.database.documents
    const id = idOf(params.id)
    if (!id || !(await documents.getCollection(id, principal.userId))) throw noSuch('collection', params.id!)
    const fileId = idOf(body.file_id)
    if (!fileId || !(await documents.addToCollection(id, fileId, principal.userId, timestamp()))) throw noSuch('file', body.file_id)
    return Response.json(vectorStoreFileObject(id, (await documents.getFile(fileId, principal.userId))!), { headers: POLL_AFTER })
  },
})
