import * as v from 'valibot'
import { unixSeconds } from '../openai/wire.ts'
import type { Collection, StoredFile } from '../store/document-store.ts'
import type { RetrievedChunk } from './retrieval.ts'

/**
 * OpenAI's Vector Stores over collections (docs/documents.md "OpenAI"): a vector store is a
 * collection, its files are the collection's, and its search is the same retrieval.
 */

/** How soon the SDKs' `…AndPoll` helpers ask again (OpenAI's `openai-poll-after-ms`). */
export const POLL_AFTER = { 'openai-poll-after-ms': '200' }

/** OpenAI's status of a file in a vector store, from its ingestion. */
const fileStatus = (file: StoredFile) => file.status

export function vectorStoreObject(collection: Collection, files: StoredFile[]) {
  const counts = { in_progress: 0, completed: 0, failed: 0, cancelled: 0, total: files.length }
  for (const file of files) counts[fileStatus(file)]++
  return {
    id: collection.id,
    object: 'vector_store' as const,
    created_at: unixSeconds(collection.created_at),
    name: collection.name,
    usage_bytes: files.reduce((sum, file) => sum + file.bytes, 0),
    file_counts: counts,
    status: counts.in_progress > 0 ? 'in_progress' : 'completed',
    expires_after: null,
    expires_at: null,
    last_active_at: unixSeconds(collection.updated_at),
    metadata: {},
  }
}

export function vectorStoreFileObject(vectorStoreId: string, file: StoredFile) {
  return {
    id: file.id,
    object: 'vector_store.file' as const,
    created_at: unixSeconds(file.created_at),
    vector_store_id: vectorStoreId,
    status: fileStatus(file),
    last_error: file.status === 'failed' ? { code: 'server_error', message: file.last_error ?? 'the file could not be read' } : null,
    usage_bytes: file.bytes,
    chunking_strategy: { type: 'static', static: { max_chunk_size_tokens: 400, chunk_overlap_tokens: 50 } },
    attributes: {},
  }
}

/** Where a chunk comes from, as OpenAI's search results carry it: `page` and `heading` when it has them. */
export const chunkAttributes = (chunk: Pick<RetrievedChunk, 'page' | 'heading'>) =>
  ({ ...(chunk.page === null ? {} : { page: chunk.page }), ...(chunk.heading === null ? {} : { heading: chunk.heading }) })

/** A search result as OpenAI's vector store search gives it. */
export function searchResultObject(chunk: RetrievedChunk) {
  return { file_id: chunk.file_id, filename: chunk.filename, score: chunk.score, attributes: chunkAttributes(chunk), content: [{ type: 'text' as const, text: chunk.content }] }
}

/** `name` and `file_ids` when a vector store is made; what OpenAI takes besides is accepted and left. */
export const CreateVectorStoreBody = v.looseObject({
  name: v.optional(v.nullable(v.pipe(v.string(), v.trim(), v.maxLength(200)))),
  file_ids: v.optional(v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.maxLength(500, 'must have at most 500 file ids'))),
})
