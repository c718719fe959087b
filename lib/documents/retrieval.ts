import { setImmediate as yieldToLoop } from 'node:timers/promises'
import type { Logger } from '../observability/log.ts'
import type { Tracer } from '../observability/tracing.ts'
import type { OllamaPool } from '../ollama/pool.ts'
import type { Config } from '../shared/config.ts'
import type { Store } from '../store/store.ts'
import { searchWords } from '../conversations/search.ts'
import type { FileSource } from '../store/chat-store.ts'
import type { DocumentStore, FileVectors, StoredFile } from '../store/document-store.ts'
import { embedTexts } from './embedding.ts'

/** Candidates each ranking (full text, vectors) brings to the fusion. */
const CANDIDATES = 50
/** Reciprocal rank fusion's constant (Cormack et al.): a rank's weight is 1 / (60 + rank). */
const RRF_K = 60
/** Vectors compared between two yields to the event loop (~1 ms of work at 768 dimensions). */
const VECTORS_PER_SLICE = 2_000
/** The characters of a chunk a source shows. */
const SNIPPET_CHARS = 300

/** One chunk given to the model (or to a search's caller), numbered for [n] citations, with its text. */
export interface RetrievedChunk extends FileSource {
  content: string
}

/**
 * A file's vectors as the cache keeps them: each row scaled into int8 by its largest component (a
 * quarter of float32's memory: 100,000 chunks of 768 dimensions take 77 MB, not 307), with that
 * scale. Ranking by them keeps the exact order but for near ties (docs/documents.md "Figures").
 */
export interface CachedVectors {
  ids: number[]
  dimensions: number
  values: Int8Array
  scales: Float32Array
}

/**
 * Files' vectors kept in memory by file and model, up to `maxBytes` (least recently used go
 * first): a completed file's vectors never change, so a cached copy is good until the file goes.
 * Queries that want a file being loaded wait for that load.
 */
export class VectorCache {
  private readonly entries = new Map<string, CachedVectors>()
  private readonly loading = new Map<string, Promise<CachedVectors>>()
  private bytes = 0
  private readonly maxBytes: number

  constructor(maxBytes = 256 * 1024 ** 2) {
    this.maxBytes = maxBytes
  }

  async get(store: DocumentStore, fileId: string, model: string): Promise<CachedVectors> {
    const key = `${model}\n${fileId}`
    const cached = this.entries.get(key)
    if (cached) {
      this.entries.delete(key)
      this.entries.set(key, cached)
      return cached
    }
    let load = this.loading.get(key)
    if (!load) {
      load = store.fileVectors(fileId, model).then(quantized).then((loaded) => {
        this.keep(key, loaded)
        return loaded
      }).finally(() => this.loading.delete(key))
      this.loading.set(key, load)
    }
    return load
  }

  private keep(key: string, loaded: CachedVectors): void {
    this.entries.set(key, loaded)
    this.bytes += sizeOf(loaded)
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes || oldest === key) break
      this.entries.delete(oldest)
      this.bytes -= sizeOf(entry)
    }
  }
}

const sizeOf = (vectors: CachedVectors) => vectors.values.byteLength + vectors.scales.byteLength + vectors.ids.length * 8

/** Float32 rows as int8 rows and their scales, yielding to the event loop every VECTORS_PER_SLICE rows. */
async function quantized({ ids, dimensions, vectors }: FileVectors): Promise<CachedVectors> {
  const values = new Int8Array(ids.length * dimensions)
  const scales = new Float32Array(ids.length)
  for (let row = 0; row < ids.length; row++) {
    const at = row * dimensions
    let largest = 0
    for (let index = at; index < at + dimensions; index++) largest = Math.max(largest, Math.abs(vectors[index]!))
    const scale = largest / 127
    scales[row] = scale
    if (scale > 0) for (let index = at; index < at + dimensions; index++) values[index] = Math.round(vectors[index]! / scale)
    if ((row + 1) % VECTORS_PER_SLICE === 0) await yieldToLoop()
  }
  return { ids, dimensions, values, scales }
}

/** The dot product of `query` with the int8 row at `at` in `values`, four products a step (about twice as fast as one in V8); unscaled. */
function dot(values: Int8Array, at: number, query: Float32Array): number {
  let a = 0
  let b = 0
  let c = 0
  let d = 0
  const length = query.length
  let index = 0
  for (; index + 3 < length; index += 4) {
    a += values[at + index]! * query[index]!
    b += values[at + index + 1]! * query[index + 1]!
    c += values[at + index + 2]! * query[index + 2]!
    d += values[at + index + 3]! * query[index + 3]!
  }
  for (; index < length; index++) a += values[at + index]! * query[index]!
  return a + b + c + d
}

/** The `limit` chunks nearest `query` (cosine: Ollama's vectors are unit length) among the files' vectors. */
export async function nearestChunks(vectorsOf: (file: StoredFile) => Promise<CachedVectors>, files: StoredFile[], query: Float32Array, limit: number): Promise<number[]> {
  const best: Array<{ id: number; score: number }> = []
  let compared = 0
  for (const file of files) {
    const { ids, dimensions, values, scales } = await vectorsOf(file)
    if (dimensions !== query.length) continue
    for (let row = 0; row < ids.length; row++) {
      const score = scales[row]! * dot(values, row * dimensions, query)
      if (best.length < limit || score > best[best.length - 1]!.score) {
        let place = best.length
        while (place > 0 && best[place - 1]!.score < score) place--
        best.splice(place, 0, { id: ids[row]!, score })
        if (best.length > limit) best.pop()
      }
      if (++compared % VECTORS_PER_SLICE === 0) await yieldToLoop()
    }
  }
  return best.map((entry) => entry.id)
}

/**
 * The `topK` chunks of `files` that best answer `query`: the full-text ranking and the vector
 * ranking (the query embedded by EMBED_MODEL) fused by reciprocal rank. Only completed files are
 * searched. When Ollama cannot embed the query, the full-text ranking alone answers.
 */
export async function retrieve(app: RetrievalApp, files: StoredFile[], query: string, topK: number): Promise<RetrievedChunk[]> {
  if (!app.tracer.enabled) return rankedChunks(app, files, query, topK)
  return app.tracer.span('retrieval', { attributes: { 'chat_ollama.retrieval.files': files.length, 'chat_ollama.retrieval.top_k': topK, 'gen_ai.request.model': app.config.embedModel } }, async (span) => {
    const chunks = await rankedChunks(app, files, query, topK)
    span.setAttributes({ 'chat_ollama.retrieval.chunks': chunks.length })
    return chunks
  })
}

type RetrievalApp = { database: Store; ollama: OllamaPool; config: Config; log: Logger; vectors: VectorCache; tracer: Tracer }

async function rankedChunks(app: RetrievalApp, files: StoredFile[], query: string, topK: number): Promise<RetrievedChunk[]> {
  const store = app.database.documents
  const searchable = files.filter((file) => file.status === 'completed')
  if (searchable.length === 0 || query.trim() === '') return []
  const model = app.config.embedModel
  const byText = await store.matchingChunks(searchable.map((file) => file.id), searchWords(query), CANDIDATES)
  let byVector: number[] = []
  try {
    // Bounded as a chat's wait for Ollama's headers: a question waits no longer for its vector.
    const [vector] = (await embedTexts(app.ollama, model, [query], { timeoutMs: app.config.ollamaTimeoutMs })).vectors
    byVector = await nearestChunks((file) => app.vectors.get(store, file.id, model), searchable, vector!, CANDIDATES)
  } catch (error) {
    app.log.warn('retrieval goes on by full text alone: the query could not be embedded', { error })
  }
  const fused = new Map<number, number>()
  for (const ranking of [byText, byVector]) {
    ranking.forEach((id, rank) => fused.set(id, (fused.get(id) ?? 0) + 1 / (RRF_K + rank + 1)))
  }
  const chosen = [...fused].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, topK)
  if (chosen.length === 0) return []
  const chunks = new Map((await store.chunks(chosen.map(([id]) => id))).map((chunk) => [chunk.id, chunk]))
  const names = new Map(searchable.map((file) => [file.id, file.filename]))
  return chosen.flatMap(([id, score]) => {
    const chunk = chunks.get(id)
    if (!chunk || !names.has(chunk.file_id)) return []
    const snippet = chunk.content.length > SNIPPET_CHARS ? `${chunk.content.slice(0, SNIPPET_CHARS).replace(/\s+\S*$/, '')}…` : chunk.content
    return [{ file_id: chunk.file_id, filename: names.get(chunk.file_id)!, page: chunk.page, heading: chunk.heading, snippet, score: Math.round(score * 1e6) / 1e6, content: chunk.content }]
  }).map((chunk, index) => ({ n: index + 1, ...chunk }))
}
