import type { Row, Sql, TransactionSql } from 'postgres'
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
import { PostgresPart } from './part.ts'
import type { ReplySource } from '../chat-store.ts'
import { iso } from './rows.ts'

/** Chunks written in one statement. */
const CHUNK_BATCH = 500

/** How many of the matching chunks ts_rank (which reads each chunk's whole tsvector) orders in matchingChunks. */
const RANKED_CHUNKS = 200

const toFile = (row: Row) => toStoredFile(row, iso as never)
const toCollection = (row: Row): Collection => ({
  id: row.id,
  name: row.name,
  created_at: iso(row.created_at)!,
  updated_at: iso(row.updated_at)!,
  file_count: Number(row.file_count),
})

const FILE_COLUMNS = 'f.id, f.owner_id, f.filename, f.kind, f.media_type, f.bytes, f.purpose, f.status, f.pages, f.chunks_total, f.chunks_done, f.embed_model, f.last_error, f.created_at, f.completed_at'

/** Documents in PostgreSQL (migration 017): any instance ingests any file, once at a time (graphile-worker's claim). */
export class PostgresDocuments extends PostgresPart implements DocumentStore {
  async addFile(file: NewFile, limits: FileLimits, now: string): Promise<StoredFile | 'files' | 'bytes'> {
    return (await this.db()).begin(async (tx) => {
      // One upload of an owner at a time: the limits are checked against what the others stored.
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`files:${file.ownerId}`}, 0))`
      const [usage] = await tx`SELECT count(*) AS files, coalesce(sum(bytes), 0) AS bytes FROM files WHERE owner_id = ${file.ownerId}`
      if (Number(usage!.files) + 1 > limits.files) return 'files' as const
      if (Number(usage!.bytes) + file.data.byteLength > limits.bytes) return 'bytes' as const
      await tx`INSERT INTO files (id, owner_id, filename, kind, media_type, bytes, purpose, status, embed_model, created_at)
        VALUES (${file.id}, ${file.ownerId}, ${file.filename}, ${file.kind}, ${file.mediaType}, ${file.data.byteLength}, ${file.purpose}, 'in_progress', ${file.embedModel}, ${now})`
      await tx`INSERT INTO file_data (file_id, data) VALUES (${file.id}, ${Buffer.from(file.data.buffer, file.data.byteOffset, file.data.byteLength)})`
      return (await this.readFile(tx, file.id, file.ownerId))!
    })
  }

  private async readFile(sql: Sql | TransactionSql, id: string, ownerId: string): Promise<StoredFile | undefined> {
    const [row] = await sql`SELECT ${sql.unsafe(FILE_COLUMNS)} FROM files f WHERE f.id = ${id} AND f.owner_id = ${ownerId}`
    return row && toFile(row)
  }

  async listFiles(ownerId: string, { limit, after, purpose }: { limit: number; after?: string; purpose?: string }): Promise<StoredFile[]> {
    const sql = await this.db()
    const rows = await sql`SELECT ${sql.unsafe(FILE_COLUMNS)} FROM files f
      WHERE f.owner_id = ${ownerId} AND (${purpose ?? null}::text IS NULL OR f.purpose = ${purpose ?? null})
        AND (${after ?? null}::text IS NULL OR (f.created_at, f.id) < (SELECT created_at, id FROM files WHERE id = ${after ?? null} AND owner_id = ${ownerId}))
      ORDER BY f.created_at DESC, f.id DESC LIMIT ${limit}`
    return rows.map(toFile)
  }

  async getFile(id: string, ownerId: string): Promise<StoredFile | undefined> {
    return this.readFile(await this.db(), id, ownerId)
  }

  async fileData(id: string, ownerId: string): Promise<{ file: StoredFile; data: Uint8Array } | undefined> {
    const sql = await this.db()
    const file = await this.readFile(sql, id, ownerId)
    if (!file) return undefined
    const [row] = await sql`SELECT data FROM file_data WHERE file_id = ${id}`
    return row && { file, data: row.data }
  }

  async deleteFile(id: string, ownerId: string): Promise<boolean> {
    const sql = await this.db()
    return (await sql`DELETE FROM files WHERE id = ${id} AND owner_id = ${ownerId}`).count > 0
  }

  async claimFile(worker: string, embedModel: string, leaseUntil: string): Promise<ClaimedFile | undefined> {
    const sql = await this.db()
    // SKIP LOCKED: instances claiming at once each take another file, none waits for the others.
    const [claimed] = await sql`
      UPDATE files SET claimed_by = ${worker}, claimed_until = ${leaseUntil}, attempts = attempts + 1
      WHERE id = (
        SELECT id FROM files
        WHERE (status = 'in_progress' OR (status = 'completed' AND embed_model <> ${embedModel}))
          AND (claimed_until IS NULL OR claimed_until < now())
        ORDER BY status DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING ${sql.unsafe(FILE_COLUMNS.replaceAll('f.', ''))}`
    if (!claimed) return undefined
    const file = toFile(claimed)
    if (file.chunks_total !== null) return { file, data: null }
    const [row] = await sql`SELECT data FROM file_data WHERE file_id = ${file.id}`
    return { file, data: row?.data ?? null }
  }

  async storeChunks(fileId: string, worker: string, chunks: NewChunk[], pages: number | null, maxOwnerChunks: number, leaseUntil: string): Promise<'stored' | 'lost' | 'over_limit'> {
    return (await this.db()).begin(async (tx) => {
      const [held] = await tx`UPDATE files SET claimed_until = ${leaseUntil} WHERE id = ${fileId} AND claimed_by = ${worker} RETURNING owner_id`
      if (!held) return 'lost' as const
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`files:${held.owner_id}`}, 0))`
      const [usage] = await tx`SELECT coalesce(sum(chunks_total), 0) AS chunks FROM files WHERE owner_id = ${held.owner_id} AND id <> ${fileId}`
      if (Number(usage!.chunks) + chunks.length > maxOwnerChunks) return 'over_limit' as const
      // What an earlier attempt left (it was cut short before it counted its chunks).
      await tx`DELETE FROM file_chunks WHERE file_id = ${fileId}`
      for (let from = 0; from < chunks.length; from += CHUNK_BATCH) {
        const rows = chunks.slice(from, from + CHUNK_BATCH).map((chunk) => ({ file_id: fileId, position: chunk.position, page: chunk.page, heading: chunk.heading, content: chunk.content }))
        await tx`INSERT INTO file_chunks ${tx(rows, 'file_id', 'position', 'page', 'heading', 'content')}`
      }
      await tx`UPDATE files SET chunks_total = ${chunks.length}, pages = ${pages}, chunks_done = 0 WHERE id = ${fileId}`
      return 'stored' as const
    })
  }

  async chunksToEmbed(fileId: string, embedModel: string, limit: number): Promise<Array<{ id: number; heading: string | null; content: string }>> {
    const sql = await this.db()
    const rows = await sql`SELECT id, heading, content FROM file_chunks WHERE file_id = ${fileId} AND (embed_model IS NULL OR embed_model <> ${embedModel}) ORDER BY position LIMIT ${limit}`
    return rows.map((row) => ({ id: Number(row.id), heading: row.heading, content: row.content }))
  }

  async storeEmbeddings(fileId: string, worker: string, embedModel: string, vectors: Array<{ id: number; vector: Float32Array }>, leaseUntil: string): Promise<boolean> {
    return (await this.db()).begin(async (tx) => {
      const [held] = await tx`UPDATE files SET claimed_until = ${leaseUntil} WHERE id = ${fileId} AND claimed_by = ${worker} RETURNING id`
      if (!held) return false
      const ids = vectors.map(({ id }) => String(id))
      // As hex: postgres.js sends an array of byteas as one bytea.
      const embeddings = vectors.map(({ vector }) => Buffer.from(vectorBytes(vector)).toString('hex'))
      await tx`UPDATE file_chunks c SET embedding = decode(v.embedding, 'hex'), embed_model = ${embedModel}
        FROM unnest(${ids}::bigint[], ${embeddings}::text[]) AS v(id, embedding) WHERE c.id = v.id AND c.file_id = ${fileId}`
      await tx`UPDATE files SET chunks_done = (SELECT count(*) FROM file_chunks WHERE file_id = ${fileId} AND embed_model = ${embedModel}) WHERE id = ${fileId}`
      return true
    })
  }

  async finishFile(fileId: string, worker: string, outcome: { status: 'completed'; embedModel: string } | { status: 'failed'; error: string }, now: string): Promise<boolean> {
    const sql = await this.db()
    const result = outcome.status === 'completed'
      ? await sql`UPDATE files SET status = 'completed', embed_model = ${outcome.embedModel}, last_error = NULL, completed_at = ${now}, claimed_by = NULL, claimed_until = NULL
          WHERE id = ${fileId} AND claimed_by = ${worker}`
      : await sql`UPDATE files SET status = 'failed', last_error = ${outcome.error}, completed_at = ${now}, claimed_by = NULL, claimed_until = NULL
          WHERE id = ${fileId} AND claimed_by = ${worker}`
    return result.count > 0
  }

  async deferFile(fileId: string, worker: string, retryAt: string, why: string): Promise<boolean> {
    const sql = await this.db()
    return (await sql`UPDATE files SET claimed_by = NULL, claimed_until = ${retryAt}, last_error = ${why} WHERE id = ${fileId} AND claimed_by = ${worker}`).count > 0
  }

  async releaseClaims(instanceId: string): Promise<number> {
    const sql = await this.db()
    // Workers are named `<instance id>:<pid>`.
    const prefix = `${instanceId.replace(/[\\%_]/g, (char) => `\\${char}`)}:%`
    return (await sql`UPDATE files SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by LIKE ${prefix}`).count
  }

  async purgeDeletedChunks(limit: number): Promise<number> {
    const sql = await this.db()
    const result = await sql`DELETE FROM file_chunks WHERE id IN (
      SELECT c.id FROM file_chunks c WHERE NOT EXISTS (SELECT 1 FROM files WHERE id = c.file_id) LIMIT ${limit})`
    return result.count
  }

  private async readCollection(sql: Sql | TransactionSql, id: string, ownerId: string): Promise<Collection | undefined> {
    const [row] = await sql`SELECT c.id, c.name, c.created_at, c.updated_at, (SELECT count(*) FROM collection_files WHERE collection_id = c.id) AS file_count
      FROM collections c WHERE c.id = ${id} AND c.owner_id = ${ownerId}`
    return row && toCollection(row)
  }

  async addCollection(ownerId: string, id: string, name: string, now: string): Promise<Collection> {
    const sql = await this.db()
    await sql`INSERT INTO collections (id, owner_id, name, created_at, updated_at) VALUES (${id}, ${ownerId}, ${name}, ${now}, ${now})`
    return (await this.readCollection(sql, id, ownerId))!
  }

  async listCollections(ownerId: string, limit: number): Promise<Collection[]> {
    const sql = await this.db()
    const rows = await sql`SELECT c.id, c.name, c.created_at, c.updated_at, (SELECT count(*) FROM collection_files WHERE collection_id = c.id) AS file_count
      FROM collections c WHERE c.owner_id = ${ownerId} ORDER BY c.created_at DESC, c.id DESC LIMIT ${limit}`
    return rows.map(toCollection)
  }

  async getCollection(id: string, ownerId: string): Promise<Collection | undefined> {
    return this.readCollection(await this.db(), id, ownerId)
  }

  async renameCollection(id: string, ownerId: string, name: string, now: string): Promise<Collection | undefined> {
    const sql = await this.db()
    await sql`UPDATE collections SET name = ${name}, updated_at = ${now} WHERE id = ${id} AND owner_id = ${ownerId}`
    return this.readCollection(sql, id, ownerId)
  }

  async deleteCollection(id: string, ownerId: string): Promise<boolean> {
    const sql = await this.db()
    return (await sql`DELETE FROM collections WHERE id = ${id} AND owner_id = ${ownerId}`).count > 0
  }

  async addToCollection(collectionId: string, fileId: string, ownerId: string, now: string): Promise<boolean> {
    const sql = await this.db()
    await sql`INSERT INTO collection_files (collection_id, file_id, added_at)
      SELECT c.id, f.id, ${now} FROM collections c JOIN files f ON f.owner_id = c.owner_id WHERE c.id = ${collectionId} AND f.id = ${fileId} AND c.owner_id = ${ownerId}
      ON CONFLICT DO NOTHING`
    const [row] = await sql`SELECT 1 FROM collection_files m JOIN collections c ON c.id = m.collection_id
      WHERE m.collection_id = ${collectionId} AND m.file_id = ${fileId} AND c.owner_id = ${ownerId}`
    return row !== undefined
  }

  async removeFromCollection(collectionId: string, fileId: string, ownerId: string): Promise<boolean> {
    const sql = await this.db()
    const result = await sql`DELETE FROM collection_files WHERE collection_id = ${collectionId} AND file_id = ${fileId}
      AND EXISTS (SELECT 1 FROM collections WHERE id = ${collectionId} AND owner_id = ${ownerId})`
    return result.count > 0
  }

  async collectionFiles(collectionId: string, ownerId: string): Promise<StoredFile[] | undefined> {
    const sql = await this.db()
    if (!(await this.readCollection(sql, collectionId, ownerId))) return undefined
    const rows = await sql`SELECT ${sql.unsafe(FILE_COLUMNS)} FROM collection_files m JOIN files f ON f.id = m.file_id
      WHERE m.collection_id = ${collectionId} ORDER BY m.added_at DESC, f.id DESC`
    return rows.map(toFile)
  }

  async filesOf(ownerId: string, fileIds: string[], collectionIds: string[]): Promise<StoredFile[]> {
    const sql = await this.db()
    const rows = await sql`SELECT ${sql.unsafe(FILE_COLUMNS)} FROM files f WHERE f.owner_id = ${ownerId} AND (
        f.id = ANY(${fileIds}::text[])
        OR f.id IN (SELECT m.file_id FROM collection_files m JOIN collections c ON c.id = m.collection_id
                    WHERE c.owner_id = ${ownerId} AND c.id = ANY(${collectionIds}::text[])))
      ORDER BY f.created_at, f.id`
    return rows.map(toFile)
  }

  async recordSources(messageId: string, sources: ReplySource[]): Promise<void> {
    const sql = await this.db()
    await sql`UPDATE messages SET sources = ${JSON.stringify(sources)}::jsonb WHERE id = ${messageId}`
  }

  async matchingChunks(fileIds: string[], words: string[], limit: number): Promise<number[]> {
    if (words.length === 0 || fileIds.length === 0) return []
    const sql = await this.db()
    // Counted no further than past the limit: a common word costs about what a rare one does.
    const counts = await Promise.all(words.map(async (word) => {
      const [row] = await sql`SELECT count(*) AS chunks FROM (SELECT 1 FROM file_chunks WHERE search @@ to_tsquery('simple', ${word}) LIMIT ${COMMON_WORD_CHUNKS + 1}) AS matches`
      return Number(row!.chunks)
    }))
    const chosen = telling(words, counts)
    // ts_rank orders only the RANKED_CHUNKS holding the most telling words, each weighted by how
    // rare it is (its inverse document frequency), found from the index alone: the rank reads a
    // bounded number of chunks however large the files are. Only a lone word may be in more than
    // COMMON_WORD_CHUNKS; its chunks all weigh the same, so any RANKED_CHUNKS of them will do.
    const weights = chosen.map((word) => Math.log((COMMON_WORD_CHUNKS + 1) / Math.max(1, counts[words.indexOf(word)]!)))
    const most = chosen.length === 1 ? RANKED_CHUNKS : COMMON_WORD_CHUNKS + 1
    // Words are letters and digits only (lib/conversations/search.ts): any of them, whole.
    const rows = await sql`
      WITH candidates AS (
        SELECT m.id, sum(w.weight) AS weight
        FROM unnest(${chosen}::text[], ${weights}::float8[]) AS w(word, weight)
        CROSS JOIN LATERAL (SELECT id FROM file_chunks WHERE file_id = ANY(${fileIds}::text[]) AND search @@ to_tsquery('simple', w.word) LIMIT ${most}) AS m
        GROUP BY m.id ORDER BY weight DESC, m.id LIMIT ${RANKED_CHUNKS}
      ), q AS (SELECT to_tsquery('simple', ${chosen.join(' | ')}) AS query)
      SELECT c.id FROM candidates JOIN file_chunks c USING (id), q
      ORDER BY ts_rank(c.search, q.query) DESC, c.id LIMIT ${limit}`
    return rows.map((row) => Number(row.id))
  }

  async fileVectors(fileId: string, embedModel: string): Promise<FileVectors> {
    const sql = await this.db()
    const rows: Array<{ id: number; embedding: Uint8Array }> = []
    for (let after = -1; ;) {
      const page = await sql`SELECT id, position, embedding FROM file_chunks WHERE file_id = ${fileId} AND embed_model = ${embedModel} AND position > ${after}
        ORDER BY position LIMIT ${VECTOR_PAGE}`
      rows.push(...page.map((row) => ({ id: Number(row.id), embedding: row.embedding as Uint8Array })))
      if (page.length < VECTOR_PAGE) break
      after = Number(page.at(-1)!.position)
    }
    return vectorsOf(rows)
  }

  async chunks(ids: number[]): Promise<StoredChunk[]> {
    const sql = await this.db()
    const rows = await sql`SELECT id, file_id, position, page, heading, content FROM file_chunks WHERE id = ANY(${ids.map(String)}::bigint[])`
    return rows.map((row) => ({ id: Number(row.id), file_id: row.file_id, position: row.position, page: row.page, heading: row.heading, content: row.content }))
  }
}
