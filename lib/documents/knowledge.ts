import type { DocumentStore, StoredFile } from '../store/document-store.ts'
import { noSuch } from './files-api.ts'

/**
 * The caller's files named by `fileIds` and in the collections named by `collectionIds`, each
 * once. With `strict`, an id that is not the caller's (or no more) is 404, as a missing one; else
 * it is passed over (a chat keeps ids of files deleted since).
 */
export async function knowledgeFiles(store: DocumentStore, ownerId: string, fileIds: string[], collectionIds: string[], strict: boolean): Promise<StoredFile[]> {
  if (fileIds.length === 0 && collectionIds.length === 0) return []
  const files = await store.filesOf(ownerId, fileIds, collectionIds)
  if (strict) {
    const found = new Set(files.map((file) => file.id))
    const missingFile = fileIds.find((id) => !found.has(id))
    if (missingFile) throw noSuch('file', missingFile)
    for (const id of collectionIds) if (!(await store.getCollection(id, ownerId))) throw noSuch('collection', id)
  }
  return files
}
