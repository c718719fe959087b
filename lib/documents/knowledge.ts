import type { DocumentStore, StoredFile } from '../store/document-store.ts'
import { noSuch } from './files-api.ts'

/**
 * The caller's files named by `fileIds` and in the collections named by `collectionIds`, each
 * once. An id the request itself `sent` (a subset of those) that is not the caller's (or no
 * more) is 404, as a missing one; others (ids a chat kept of files deleted since) are passed over.
 */
export async function knowledgeFiles(store: DocumentStore, ownerId: string, fileIds: string[], collectionIds: string[], sent: { files?: string[] | undefined; collections?: string[] | undefined } = {}): Promise<StoredFile[]> {
  if (fileIds.length === 0 && collectionIds.length === 0) return []
  const files = await store.filesOf(ownerId, fileIds, collectionIds)
  const found = new Set(files.map((file) => file.id))
  const missingFile = sent.files?.find((id) => !found.has(id))
  if (missingFile) throw noSuch('file', missingFile)
  for (const id of sent.collections ?? []) if (!(await store.getCollection(id, ownerId))) throw noSuch('collection', id)
  return files
}
