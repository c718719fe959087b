import { randomUUID } from 'node:crypto'
import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { MAX_COLLECTIONS } from '../lib/documents/collection-input.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'
import { CreateVectorStoreBody, POLL_AFTER, vectorStoreObject } from '../lib/documents/vector-stores.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { parseInput } from '../lib/http/validate.ts'
import { unsupported } from '../lib/openai/wire.ts'
import { timestamp } from '../lib/shared/clock.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

const Body = v.looseObject({
  ...CreateVectorStoreBody.entries,
  expires_after: v.optional(v.unknown()),
  chunking_strategy: v.optional(v.unknown()),
  metadata: v.optional(v.unknown()),
})

/**
 * POST /v1/vector_stores: OpenAI's vector store, made as a collection (docs/documents.md), with
 * the caller's `file_ids` in it. Expiry, a chunking of one's own and metadata are refused, naming
 * the param: this server cuts documents by their structure and keeps stores until deleted.
 */
export default defineFunction({
  name: 'vector-stores-create',
  method: 'POST',
  path: '/v1/vector_stores',
  errors: 'openai',
  async handle(request, { app, principal }) {
    const body = parseInput(Body, (await readJsonBody(request, app.config.maxBodyBytes)) ?? {}, 'request body')
    if (body.expires_after != null) throw unsupported('expires_after', 'Vector stores here do not expire: leave expires_after out.')
    const strategy = body.chunking_strategy as { type?: unknown } | null | undefined
    if (strategy != null && strategy.type !== 'auto') throw unsupported('chunking_strategy', 'Files are cut by their structure here: chunking_strategy must be auto or left out.')
    if (body.metadata != null && Object.keys(body.metadata as object).length > 0) throw unsupported('metadata', 'Vector stores here keep no metadata.')
    const documents = app.database.documents
    const fileIds = [...new Set(body.file_ids ?? [])]
    const files = fileIds.length ? await documents.filesOf(principal.userId, fileIds.flatMap((id) => idOf(id) ?? []), []) : []
    const missing = fileIds.find((id) => !files.some((file) => file.id === idOf(id)))
    if (missing) throw noSuch('file', missing)
    if ((await documents.listCollections(principal.userId, MAX_COLLECTIONS)).length >= MAX_COLLECTIONS) {
      throw new HttpProblem(429, 'rate_limit', `You have ${MAX_COLLECTIONS} collections (vector stores), the most one user may keep: delete some first.`)
    }
    const now = timestamp()
    const collection = await documents.addCollection(principal.userId, randomUUID(), body.name || 'Vector store', now)
    for (const file of files) await documents.addToCollection(collection.id, file.id, principal.userId, now)
    const stored = (await documents.collectionFiles(collection.id, principal.userId))!
    return Response.json(vectorStoreObject((await documents.getCollection(collection.id, principal.userId))!, stored), { headers: POLL_AFTER })
  },
})
