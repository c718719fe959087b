import type { ReplySource } from './chat-store.ts'

/** What the documents feature keeps (docs/documents.md): files, their chunks and vectors, and collections. */

export type FileKind = 'pdf' | 'docx' | 'markdown' | 'text' | 'html' | 'csv'
export type FileStatus = 'in_progress' | 'completed' | 'failed'

export interface StoredFile {
  id: string
  owner_id: string
  filename: string
  kind: FileKind
  media_type: string
  bytes: number
  purpose: string
  status: FileStatus
  /** Pages of a PDF; null for other kinds, and before extraction. */
  pages: number | null
  /** Null until the text is extracted and cut. */
  chunks_total: number | null
  chunks_done: number
  /** The model its vectors are made with. */
  embed_model: string
  last_error: string | null
  created_at: string
  completed_at: string | null
}

export interface NewFile {
  id: string
  ownerId: string
  filename: string
  kind: FileKind
  mediaType: string
  purpose: string
  data: Uint8Array
  embedModel: string
}

/** What one user may keep (USER_MAX_FILES, USER_MAX_FILE_BYTES). */
export interface FileLimits {
  files: number
  bytes: number
}

export interface Collection {
  id: string
  name: string
  created_at: string
  updated_at: string
  file_count: number
}

/** A piece of a file's text, and where in the file it is. */
export interface NewChunk {
  position: number
  page: number | null
  /** The headings it sits under, outermost first, joined with " > ". */
  heading: string | null
  content: string
}

export interface StoredChunk extends NewChunk {
  id: number
  file_id: string
}

/** A file ingestion took: its bytes when its text is still to be extracted. */
export interface ClaimedFile {
  file: StoredFile
  data: Uint8Array | null
}

/** A file's vectors made by one model, one after another in `vectors` (ids[i] is at i * dimensions). */
export interface FileVectors {
  ids: number[]
  dimensions: number
  vectors: Float32Array
}

export interface DocumentStore {
  /** Stores a new file `in_progress`, or says which of the owner's limits it would pass. */
  addFile(file: NewFile, limits: FileLimits, now: string): Promise<StoredFile | 'files' | 'bytes'>
  /** The owner's files, newest first, after the file `after` (a cursor), of one `purpose` when given. */
  listFiles(ownerId: string, options: { limit: number; after?: string; purpose?: string }): Promise<StoredFile[]>
  /** The file when it exists and is `ownerId`'s; someone else's is as absent as a missing one. */
  getFile(id: string, ownerId: string): Promise<StoredFile | undefined>
  /** The bytes as uploaded, for the owner only. */
  fileData(id: string, ownerId: string): Promise<{ file: StoredFile; data: Uint8Array } | undefined>
  /** Removes the file and its place in collections at once; its chunks go afterwards (purgeDeletedChunks). */
  deleteFile(id: string, ownerId: string): Promise<boolean>

  /**
   * Takes one file for ingestion on behalf of `worker` until `leaseUntil`: one `in_progress` that
   * no live worker holds, else a completed one whose vectors are not `embedModel`'s (re-embedding).
   * Any instance takes any file once at a time.
   */
  claimFile(worker: string, embedModel: string, leaseUntil: string): Promise<ClaimedFile | undefined>
  /**
   * The file's chunks, cut from its text, while `worker` holds it (else 'lost'); 'over_limit'
   * when they would take the owner past `maxOwnerChunks` (nothing stored then).
   */
  storeChunks(fileId: string, worker: string, chunks: NewChunk[], pages: number | null, maxOwnerChunks: number, leaseUntil: string): Promise<'stored' | 'lost' | 'over_limit'>
  /** Up to `limit` of the file's chunks without a vector by `embedModel`, in order. */
  chunksToEmbed(fileId: string, embedModel: string, limit: number): Promise<Array<{ id: number; heading: string | null; content: string }>>
  /** Vectors for chunks of the file while `worker` holds it, counted in chunks_done; false when the claim is lost. */
  storeEmbeddings(fileId: string, worker: string, embedModel: string, vectors: Array<{ id: number; vector: Float32Array }>, leaseUntil: string): Promise<boolean>
  /** Ends the worker's claim: completed (by `embedModel`), or failed with why. */
  finishFile(fileId: string, worker: string, outcome: { status: 'completed'; embedModel: string } | { status: 'failed'; error: string }, now: string): Promise<boolean>
  /** Gives the file back until `retryAt`, saying why in `last_error` (Ollama away): it stays `in_progress`. */
  deferFile(fileId: string, worker: string, retryAt: string, why: string): Promise<boolean>
  /**
   * Claims a previous run left (it was stopped or killed mid-file), taken up again at once: on
   * SQLite every claim (one server per file), on PostgreSQL those of workers of `instanceId`.
   */
  releaseClaims(instanceId: string): Promise<number>
  /** Removes up to `limit` chunks of deleted files; how many it removed. */
  purgeDeletedChunks(limit: number): Promise<number>

  addCollection(ownerId: string, id: string, name: string, now: string): Promise<Collection>
  listCollections(ownerId: string, limit: number): Promise<Collection[]>
  getCollection(id: string, ownerId: string): Promise<Collection | undefined>
  renameCollection(id: string, ownerId: string, name: string, now: string): Promise<Collection | undefined>
  deleteCollection(id: string, ownerId: string): Promise<boolean>
  /** Puts the owner's file in the owner's collection (once); false when either is not theirs. */
  addToCollection(collectionId: string, fileId: string, ownerId: string, now: string): Promise<boolean>
  removeFromCollection(collectionId: string, fileId: string, ownerId: string): Promise<boolean>
  /** The collection's files, newest added first; undefined when the collection is not the owner's. */
  collectionFiles(collectionId: string, ownerId: string): Promise<StoredFile[] | undefined>

  /** The owner's files among `fileIds` and in the owner's collections among `collectionIds`, each once. */
  filesOf(ownerId: string, fileIds: string[], collectionIds: string[]): Promise<StoredFile[]>
  /** Records the sources a reply was given, on its message (listed by GET …/messages). */
  recordSources(messageId: string, sources: ReplySource[]): Promise<void>
  /**
   * Chunks of `fileIds` holding any of `words` (letters and digits only), best full-text match
   * first. Words in more than COMMON_WORD_CHUNKS chunks say little of what a chunk is about (their
   * inverse document frequency is near nothing) and would make every chunk a match to rank: they
   * are left out, unless every word is that common (then the rarest is kept).
   */
  matchingChunks(fileIds: string[], words: string[], limit: number): Promise<number[]>
  /** Every vector the file has by `embedModel`. */
  fileVectors(fileId: string, embedModel: string): Promise<FileVectors>
  /** The chunks with these ids, in no particular order. */
  chunks(ids: number[]): Promise<StoredChunk[]>
}

/** Chunks a word may be in before matchingChunks leaves it out as too common to tell chunks apart. */
export const COMMON_WORD_CHUNKS = 1000

/** The words to match: those in at most COMMON_WORD_CHUNKS chunks (`counts`, counted no further), else the rarest one. */
export function telling(words: string[], counts: number[]): string[] {
  const rare = words.filter((_, index) => counts[index]! <= COMMON_WORD_CHUNKS)
  if (rare.length) return rare
  const rarest = counts.indexOf(Math.min(...counts))
  return rarest < 0 ? [] : [words[rarest]!]
}

/** A file row as both backends return it, with times already in RFC 3339. */
export function toStoredFile(row: Record<string, unknown>, iso: (value: never) => string | null): StoredFile {
  return {
    id: row.id as string,
    owner_id: row.owner_id as string,
    filename: row.filename as string,
    kind: row.kind as FileKind,
    media_type: row.media_type as string,
    bytes: Number(row.bytes),
    purpose: row.purpose as string,
    status: row.status as FileStatus,
    pages: row.pages === null ? null : Number(row.pages),
    chunks_total: row.chunks_total === null ? null : Number(row.chunks_total),
    chunks_done: Number(row.chunks_done),
    embed_model: row.embed_model as string,
    last_error: (row.last_error as string | null) ?? null,
    created_at: iso(row.created_at as never)!,
    completed_at: iso(row.completed_at as never),
  }
}

/** Float32 vectors as stored: little-endian bytes. */
export function vectorBytes(vector: Float32Array): Uint8Array {
  const bytes = new Uint8Array(vector.length * 4)
  const view = new DataView(bytes.buffer)
  for (let index = 0; index < vector.length; index++) view.setFloat32(index * 4, vector[index]!, true)
  return bytes
}

/** Rows of vectors a store reads at a time for fileVectors: a large file's are read in pages, between which other work runs. */
export const VECTOR_PAGE = 2000

/**
 * One file's stored vectors as FileVectors: rows of another length than the first (a model's
 * size cannot change under one name, but a row may be damaged) are left out. The bytes are
 * copied as they are: float32 little-endian, as stored, is how the platforms Node runs on hold them.
 */
export function vectorsOf(rows: Array<{ id: number; embedding: Uint8Array }>): FileVectors {
  const dimensions = rows.length ? rows[0]!.embedding.byteLength / 4 : 0
  const vectors = new Float32Array(rows.length * dimensions)
  const bytes = new Uint8Array(vectors.buffer)
  const ids: number[] = []
  for (const { id, embedding } of rows) {
    if (embedding.byteLength !== dimensions * 4) continue
    bytes.set(embedding, ids.length * dimensions * 4)
    ids.push(id)
  }
  return { ids, dimensions, vectors: vectors.subarray(0, ids.length * dimensions) }
}
