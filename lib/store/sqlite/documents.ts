import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { SQLInputValue } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import {
  toStoredFile,
  vectorBytes,
  vectorsOf,
  telling,
  VECTOR_PAGE,
  COMMON_WORD_CHUNKS,
  type ClaimedFile,
  type Collection,
  type DocumentStore,
  type FileLimits,
  type FileVectors,
  type NewChunk,
  type NewFile,
  type StoredChunk,
  type StoredFile,
} from '../document-store.ts'
import { SqliteRole } from './database.ts'
import type { ReplySource } from '../chat-store.ts'

/** Chunks written or removed in one transaction: each holds the event loop a few milliseconds at most. */
const CHUNK_BATCH = 200

const FILE_COLUMNS = `f.id, f.owner_id, f.filename, f.kind, f.media_type, f.bytes, f.purpose, f.status, f.pages, f.chunks_total,
  f.chunks_done, f.embed_model, f.last_error, f.created_at, f.completed_at`
const COLLECTION_COLUMNS = `c.id, c.name, c.created_at, c.updated_at, (SELECT count(*) FROM collection_files WHERE collection_id = c.id) AS file_count`

const sqliteIso = (value: string | null) => value
const toFile = (row: Record<string, SQLInputValue>) => toStoredFile(row, sqliteIso as never)
const toCollection = (row: Record<string, SQLInputValue>): Collection => ({
  id: row.id as string,
  name: row.name as string,
  created_at: row.created_at as string,
  updated_at: row.updated_at as string,
  file_count: Number(row.file_count),
})

/** Documents in the SQLite file (migration 027). */
export class SqliteDocuments extends SqliteRole implements DocumentStore {
  readonly statements = this.prepare({
    ownerUsage: 'SELECT count(*) AS files, coalesce(sum(bytes), 0) AS bytes FROM files WHERE owner_id = ?',
    insertFile: `INSERT INTO files (id, owner_id, filename, kind, media_type, bytes, purpose, status, embed_model, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, 'in_progress', ?, ?)`,
    insertData: 'INSERT INTO file_data (file_id, data) VALUES (?, ?)',
    getFile: `SELECT ${FILE_COLUMNS} FROM files f WHERE f.id = ? AND f.owner_id = ?`,
    listFiles: `SELECT ${FILE_COLUMNS} FROM files f
      WHERE f.owner_id = ?1 AND (?2 IS NULL OR f.purpose = ?2)
        AND (?3 IS NULL OR (f.created_at, f.id) < (SELECT created_at, id FROM files WHERE id = ?3 AND owner_id = ?1))
      ORDER BY f.created_at DESC, f.id DESC LIMIT ?4`,
    fileData: 'SELECT d.data FROM file_data d JOIN files f ON f.id = d.file_id WHERE d.file_id = ? AND f.owner_id = ?',
    deleteFile: 'DELETE FROM files WHERE id = ? AND owner_id = ?',
    claimNew: `UPDATE files SET claimed_by = ?1, claimed_until = ?2, attempts = attempts + 1
      WHERE id = (SELECT id FROM files WHERE status = 'in_progress' AND (claimed_until IS NULL OR claimed_until < ?3) ORDER BY created_at LIMIT 1)
      RETURNING id`,
    claimStale: `UPDATE files SET claimed_by = ?1, claimed_until = ?2, attempts = attempts + 1
      WHERE id = (SELECT id FROM files WHERE status = 'completed' AND embed_model <> ?4 AND (claimed_until IS NULL OR claimed_until < ?3) ORDER BY created_at LIMIT 1)
      RETURNING id`,
    claimedFile: `SELECT ${FILE_COLUMNS}, (SELECT data FROM file_data WHERE file_id = f.id AND f.chunks_total IS NULL) AS data FROM files f WHERE f.id = ?`,
    holds: 'UPDATE files SET claimed_until = ? WHERE id = ? AND claimed_by = ?',
    ownerChunks: `SELECT coalesce(sum(chunks_total), 0) AS chunks FROM files WHERE owner_id = (SELECT owner_id FROM files WHERE id = ?1) AND id <> ?1`,
    oldChunks: 'SELECT id FROM file_chunks WHERE file_id = ? LIMIT ?',
    deleteChunk: 'DELETE FROM file_chunks WHERE id = ?',
    insertChunk: 'INSERT INTO file_chunks (file_id, position, page, heading, content) VALUES (?, ?, ?, ?, ?)',
    setChunked: 'UPDATE files SET chunks_total = ?, pages = ?, chunks_done = 0 WHERE id = ? AND claimed_by = ?',
    chunksToEmbed: `SELECT id, heading, content FROM file_chunks WHERE file_id = ? AND (embed_model IS NULL OR embed_model <> ?) ORDER BY position LIMIT ?`,
    setEmbedding: 'UPDATE file_chunks SET embedding = ?, embed_model = ? WHERE id = ? AND file_id = ?',
    countDone: `UPDATE files SET chunks_done = (SELECT count(*) FROM file_chunks WHERE file_id = ?1 AND embed_model = ?2), claimed_until = ?3
      WHERE id = ?1 AND claimed_by = ?4`,
    complete: `UPDATE files SET status = 'completed', embed_model = ?, last_error = NULL, completed_at = ?, claimed_by = NULL, claimed_until = NULL
      WHERE id = ? AND claimed_by = ?`,
    fail: `UPDATE files SET status = 'failed', last_error = ?, completed_at = ?, claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?`,
    defer: 'UPDATE files SET claimed_by = NULL, claimed_until = ?, last_error = ? WHERE id = ? AND claimed_by = ?',
    releaseClaims: 'UPDATE files SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL',
    orphanChunks: 'SELECT c.id FROM file_chunks c WHERE NOT EXISTS (SELECT 1 FROM files WHERE id = c.file_id) LIMIT ?',
    insertCollection: 'INSERT INTO collections (id, owner_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
    getCollection: `SELECT ${COLLECTION_COLUMNS} FROM collections c WHERE c.id = ? AND c.owner_id = ?`,
    listCollections: `SELECT ${COLLECTION_COLUMNS} FROM collections c WHERE c.owner_id = ? ORDER BY c.created_at DESC, c.id DESC LIMIT ?`,
    renameCollection: 'UPDATE collections SET name = ?, updated_at = ? WHERE id = ? AND owner_id = ?',
    deleteCollection: 'DELETE FROM collections WHERE id = ? AND owner_id = ?',
    addToCollection: `INSERT INTO collection_files (collection_id, file_id, added_at)
      SELECT c.id, f.id, ?3 FROM collections c JOIN files f ON f.owner_id = c.owner_id WHERE c.id = ?1 AND f.id = ?2 AND c.owner_id = ?4
      ON CONFLICT DO NOTHING`,
    inCollection: `SELECT 1 FROM collection_files m JOIN collections c ON c.id = m.collection_id WHERE m.collection_id = ? AND m.file_id = ? AND c.owner_id = ?`,
    removeFromCollection: `DELETE FROM collection_files WHERE collection_id = ?1 AND file_id = ?2
      AND EXISTS (SELECT 1 FROM collections WHERE id = ?1 AND owner_id = ?3)`,
    collectionFiles: `SELECT ${FILE_COLUMNS} FROM collection_files m JOIN files f ON f.id = m.file_id WHERE m.collection_id = ?
      ORDER BY m.added_at DESC, f.id DESC`,
    filesOf: `SELECT ${FILE_COLUMNS} FROM files f WHERE f.owner_id = ?1 AND (
        f.id IN (SELECT value FROM json_each(?2))
        OR f.id IN (SELECT m.file_id FROM collection_files m JOIN collections c ON c.id = m.collection_id
                    WHERE c.owner_id = ?1 AND c.id IN (SELECT value FROM json_each(?3))))
      ORDER BY f.created_at, f.id`,
    matchingChunks: `SELECT c.id FROM file_chunks_fts t JOIN file_chunks c ON c.id = t.rowid
      WHERE file_chunks_fts MATCH ?1 AND c.file_id IN (SELECT value FROM json_each(?2))
      ORDER BY bm25(file_chunks_fts) LIMIT ?3`,
    recordSources: 'UPDATE messages SET sources = ? WHERE id = ?',
    // Counted no further than past the limit: a common word costs the same as a rare one.
    wordChunks: `SELECT count(*) AS chunks FROM (SELECT 1 FROM file_chunks_fts WHERE file_chunks_fts MATCH ? LIMIT ${COMMON_WORD_CHUNKS + 1})`,
    fileVectors: `SELECT id, position, embedding FROM file_chunks WHERE file_id = ? AND embed_model = ? AND position > ? ORDER BY position LIMIT ${VECTOR_PAGE}`,
    chunks: 'SELECT id, file_id, position, page, heading, content FROM file_chunks WHERE id IN (SELECT value FROM json_each(?))',
  })

  async addFile(file: NewFile, limits: FileLimits, now: string): Promise<StoredFile | 'files' | 'bytes'> {
    const { ownerUsage, insertFile, insertData, getFile } = this.statements
    return this.database.transaction(() => {
      const usage = ownerUsage.get(file.ownerId)!
      if (Number(usage.files) + 1 > limits.files) return 'files'
      if (Number(usage.bytes) + file.data.byteLength > limits.bytes) return 'bytes'
      insertFile.run(file.id, file.ownerId, file.filename, file.kind, file.mediaType, file.data.byteLength, file.purpose, file.embedModel, now)
      insertData.run(file.id, file.data)
      return toFile(getFile.get(file.id, file.ownerId)!)
    })
  }

  async listFiles(ownerId: string, { limit, after, purpose }: { limit: number; after?: string; purpose?: string }): Promise<StoredFile[]> {
    return this.statements.listFiles.all(ownerId, purpose ?? null, after ?? null, limit).map(toFile)
  }

  async getFile(id: string, ownerId: string): Promise<StoredFile | undefined> {
    const row = this.statements.getFile.get(id, ownerId)
    return row && toFile(row)
  }

  async fileData(id: string, ownerId: string): Promise<{ file: StoredFile; data: Uint8Array } | undefined> {
    const file = await this.getFile(id, ownerId)
    const row = file && this.statements.fileData.get(id, ownerId)
    return row ? { file: file!, data: row.data as Uint8Array } : undefined
  }

  async deleteFile(id: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.deleteFile.run(id, ownerId).changes) > 0
  }

  async claimFile(worker: string, embedModel: string, leaseUntil: string): Promise<ClaimedFile | undefined> {
    const now = timestamp()
    const claimed = this.statements.claimNew.get(worker, leaseUntil, now) ?? this.statements.claimStale.get(worker, leaseUntil, now, embedModel)
    if (!claimed) return undefined
    const row = this.statements.claimedFile.get(claimed.id as string)!
    return { file: toFile(row), data: (row.data as Uint8Array | null) ?? null }
  }

  async storeChunks(fileId: string, worker: string, chunks: NewChunk[], pages: number | null, maxOwnerChunks: number, leaseUntil: string): Promise<'stored' | 'lost' | 'over_limit'> {
    const { holds, ownerChunks, oldChunks, deleteChunk, insertChunk, setChunked } = this.statements
    const held = () => Number(holds.run(leaseUntil, fileId, worker).changes) > 0
    if (!this.database.transaction(held)) return 'lost'
    if (Number(ownerChunks.get(fileId)!.chunks) + chunks.length > maxOwnerChunks) return 'over_limit'
    // What an earlier attempt left (it was cut short before it counted its chunks).
    for (;;) {
      const old = oldChunks.all(fileId, CHUNK_BATCH)
      if (old.length === 0) break
      this.database.transaction(() => old.forEach((row) => deleteChunk.run(row.id as number)))
      await yieldToLoop()
    }
    for (let from = 0; from < chunks.length; from += CHUNK_BATCH) {
      const stored = this.database.transaction(() => {
        if (!held()) return false
        for (const chunk of chunks.slice(from, from + CHUNK_BATCH)) insertChunk.run(fileId, chunk.position, chunk.page, chunk.heading, chunk.content)
        return true
      })
      if (!stored) return 'lost'
      await yieldToLoop()
    }
    return Number(setChunked.run(chunks.length, pages, fileId, worker).changes) > 0 ? 'stored' : 'lost'
  }

  async chunksToEmbed(fileId: string, embedModel: string, limit: number): Promise<Array<{ id: number; heading: string | null; content: string }>> {
    return this.statements.chunksToEmbed.all(fileId, embedModel, limit).map((row) => ({ id: Number(row.id), heading: (row.heading as string | null) ?? null, content: row.content as string }))
  }

  async storeEmbeddings(fileId: string, worker: string, embedModel: string, vectors: Array<{ id: number; vector: Float32Array }>, leaseUntil: string): Promise<boolean> {
    const { holds, setEmbedding, countDone } = this.statements
    return this.database.transaction(() => {
      if (Number(holds.run(leaseUntil, fileId, worker).changes) === 0) return false
      for (const { id, vector } of vectors) setEmbedding.run(vectorBytes(vector), embedModel, id, fileId)
      countDone.run(fileId, embedModel, leaseUntil, worker)
      return true
    })
  }

  async finishFile(fileId: string, worker: string, outcome: { status: 'completed'; embedModel: string } | { status: 'failed'; error: string }, now: string): Promise<boolean> {
    const result = outcome.status === 'completed'
      ? this.statements.complete.run(outcome.embedModel, now, fileId, worker)
      : this.statements.fail.run(outcome.error, now, fileId, worker)
    return Number(result.changes) > 0
  }

  async deferFile(fileId: string, worker: string, retryAt: string, why: string): Promise<boolean> {
    return Number(this.statements.defer.run(retryAt, why, fileId, worker).changes) > 0
  }

  async releaseClaims(_instanceId: string): Promise<number> {
    return Number(this.statements.releaseClaims.run().changes)
  }

  async purgeDeletedChunks(limit: number): Promise<number> {
    const { orphanChunks, deleteChunk } = this.statements
    let purged = 0
    while (purged < limit) {
      const rows = orphanChunks.all(Math.min(CHUNK_BATCH, limit - purged))
      if (rows.length === 0) break
      this.database.transaction(() => rows.forEach((row) => deleteChunk.run(row.id as number)))
      purged += rows.length
      await yieldToLoop()
    }
    return purged
  }

  async addCollection(ownerId: string, id: string, name: string, now: string): Promise<Collection> {
    this.statements.insertCollection.run(id, ownerId, name, now, now)
    return (await this.getCollection(id, ownerId))!
  }

  async listCollections(ownerId: string, limit: number): Promise<Collection[]> {
    return this.statements.listCollections.all(ownerId, limit).map(toCollection)
  }

  async getCollection(id: string, ownerId: string): Promise<Collection | undefined> {
    const row = this.statements.getCollection.get(id, ownerId)
    return row && toCollection(row)
  }

  async renameCollection(id: string, ownerId: string, name: string, now: string): Promise<Collection | undefined> {
    this.statements.renameCollection.run(name, now, id, ownerId)
    return this.getCollection(id, ownerId)
  }

  async deleteCollection(id: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.deleteCollection.run(id, ownerId).changes) > 0
  }

  async addToCollection(collectionId: string, fileId: string, ownerId: string, now: string): Promise<boolean> {
    this.statements.addToCollection.run(collectionId, fileId, now, ownerId)
    return this.statements.inCollection.get(collectionId, fileId, ownerId) !== undefined
  }

  async removeFromCollection(collectionId: string, fileId: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.removeFromCollection.run(collectionId, fileId, ownerId).changes) > 0
  }

  async collectionFiles(collectionId: string, ownerId: string): Promise<StoredFile[] | undefined> {
    if (!this.statements.getCollection.get(collectionId, ownerId)) return undefined
    return this.statements.collectionFiles.all(collectionId).map(toFile)
  }

  async filesOf(ownerId: string, fileIds: string[], collectionIds: string[]): Promise<StoredFile[]> {
    return this.statements.filesOf.all(ownerId, JSON.stringify(fileIds), JSON.stringify(collectionIds)).map(toFile)
  }

  async recordSources(messageId: string, sources: ReplySource[]): Promise<void> {
    this.statements.recordSources.run(JSON.stringify(sources), messageId)
  }

  async matchingChunks(fileIds: string[], words: string[], limit: number): Promise<number[]> {
    if (words.length === 0 || fileIds.length === 0) return []
    const counts = words.map((word) => Number(this.statements.wordChunks.get(`"${word}"`)!.chunks))
    const match = telling(words, counts).map((word) => `"${word}"`).join(' OR ')
    return this.statements.matchingChunks.all(match, JSON.stringify(fileIds), limit).map((row) => Number(row.id))
  }

  async fileVectors(fileId: string, embedModel: string): Promise<FileVectors> {
    const rows: Array<{ id: number; embedding: Uint8Array }> = []
    for (let after = -1; ;) {
      const page = this.statements.fileVectors.all(fileId, embedModel, after)
      rows.push(...page.map((row) => ({ id: Number(row.id), embedding: row.embedding as Uint8Array })))
      if (page.length < VECTOR_PAGE) break
      after = Number(page.at(-1)!.position)
      await yieldToLoop()
    }
    return vectorsOf(rows)
  }

  async chunks(ids: number[]): Promise<StoredChunk[]> {
    return this.statements.chunks.all(JSON.stringify(ids)).map((row) => ({
      id: Number(row.id),
      file_id: row.file_id as string,
      position: Number(row.position),
      page: row.page === null ? null : Number(row.page),
      heading: (row.heading as string | null) ?? null,
      content: row.content as string,
    }))
  }
}
