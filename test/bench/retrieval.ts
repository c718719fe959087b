/**
 * Documents: ingestion (a PDF of many pages uploaded to the server, read, cut and embedded by the
 * fake Ollama's /api/embed, until completed) and retrieval over N chunks of 768 dimensions in one
 * user's files, hybrid (lib/documents/retrieval.ts) beside its two halves measured alone in the
 * same run: the full-text match and the exact vector scan.
 *
 * Run alone: `node --import tsx test/bench/retrieval.ts [--store sqlite|postgres] [--chunks 10000]`
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'
import { loadConfig } from '../../lib/shared/config.ts'
import { openStore, createAppContext } from '../../lib/app.ts'
import { startServer } from '../../lib/server.ts'
import { nearestChunks, retrieve } from '../../lib/documents/retrieval.ts'
import { searchWords } from '../../lib/conversations/search.ts'
import type { AppContext } from '../../lib/context.ts'
import { silentLogger } from '../../lib/observability/log.ts'
import { postgresCluster } from '../support/postgres.ts'
import { DEFAULT_MODELS, EMBED_DIMENSIONS, embeddingOf, startFakeOllama } from '../support/fake-ollama.ts'
import { makePdf, uploadRequest } from '../support/documents.ts'
import { percentile } from './load.ts'

const SAMPLES = 200
const FILES = 10
const EMBED = 'nomic-embed-text:latest'
/** A vocabulary of 5,000 made-up words, drawn with Zipf's law as a language's are: a few in most chunks, most in few. */
const VOCABULARY = Array.from({ length: 5000 }, (_, rank) => `w${(rank * 2654435761 >>> 0).toString(36)}`)
const ZIPF = (() => {
  const weights = VOCABULARY.map((_, rank) => 1 / (rank + 1))
  const total = weights.reduce((sum, weight) => sum + weight, 0)
  let sum = 0
  return weights.map((weight) => (sum += weight / total))
})()
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => ((state = Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5 >>> 0) / 2 ** 32)
}
const wordFrom = (draw: () => number) => {
  const at = draw()
  let low = 0
  let high = ZIPF.length - 1
  while (low < high) {
    const middle = (low + high) >> 1
    if (ZIPF[middle]! < at) low = middle + 1
    else high = middle
  }
  return VOCABULARY[low]!
}
/** A deterministic text of about 250 words (a chunk's size) for chunk `index`. */
const textOf = (index: number) => {
  const draw = random(index + 1)
  return Array.from({ length: 250 }, () => wordFrom(draw)).join(' ') + '.'
}
/** Queries of six words each, common and rare mixed as questions mix them. */
const QUERIES = Array.from({ length: 16 }, (_, index) => {
  const draw = random(1_000_000 + index)
  return Array.from({ length: 6 }, () => wordFrom(draw)).join(' ')
})

/** What selects a new database of `store`. */
async function storeEnv(store: 'sqlite' | 'postgres'): Promise<Record<string, string>> {
  return store === 'sqlite'
    ? { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-bench-rag-')), 'chat.db') }
    : { DATABASE_URL: await (await postgresCluster()).newDatabase() }
}

/** `chunks` chunks in FILES completed files of the local user, each embedded by the fake's embedding of its text. */

async function seed(app: AppContext, chunks: number): Promise<string[]> {
  const documents = app.database.documents
  const ids: string[] = []
  const perFile = Math.ceil(chunks / FILES)
  for (let file = 0; file < FILES; file++) {
    const id = randomUUID()
    ids.push(id)
    await documents.addFile({ id, ownerId: 'local', filename: `seed-${file}.txt`, kind: 'text', mediaType: 'text/plain', purpose: 'assistants', data: new Uint8Array([120]), embedModel: 'nomic-embed-text' }, { files: 1e6, bytes: 1e12 }, new Date().toISOString())
    const claimed = await documents.claimFile('bench', 'nomic-embed-text', new Date(Date.now() + 3_600_000).toISOString())
    const texts = Array.from({ length: perFile }, (_, at) => textOf(file * perFile + at))
    await documents.storeChunks(claimed!.file.id, 'bench', texts.map((content, position) => ({ position, page: null, heading: null, content })), null, 1e9, new Date(Date.now() + 3_600_000).toISOString())
    for (let from = 0; from < perFile; from += 500) {
      const pending = await documents.chunksToEmbed(claimed!.file.id, 'nomic-embed-text', 500)
      await documents.storeEmbeddings(claimed!.file.id, 'bench', 'nomic-embed-text', pending.map((chunk) => ({ id: chunk.id, vector: Float32Array.from(embeddingOf(chunk.content)) })), new Date(Date.now() + 3_600_000).toISOString())
    }
    await documents.finishFile(claimed!.file.id, 'bench', { status: 'completed', embedModel: 'nomic-embed-text' }, new Date().toISOString())
  }
  return ids
}

async function timed(run: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let warm = 0; warm < 10; warm++) await run()
  const samples: number[] = []
  for (let index = 0; index < SAMPLES; index++) {
    const started = performance.now()
    await run()
    samples.push(performance.now() - started)
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

/** Retrieval p50/p99 over `chunks` chunks: hybrid, and its full-text and vector halves alone. */
export async function retrievalAtScale(store: 'sqlite' | 'postgres', chunks: number): Promise<string[][]> {
  const fake = await startFakeOllama({ models: [...DEFAULT_MODELS, EMBED] })
  const config = loadConfig({ ...(await storeEnv(store)), OLLAMA_HOST: fake.hostPort, LOG_LEVEL: 'error' })
  const app = createAppContext(config, { database: await openStore(config), log: silentLogger })
  try {
    const seedStarted = performance.now()
    const fileIds = await seed(app, chunks)
    const seedSeconds = (performance.now() - seedStarted) / 1000
    const files = await app.database.documents.filesOf('local', fileIds, [])
    let turn = 0
    const query = () => QUERIES[turn++ % QUERIES.length]!
    const hybrid = await timed(() => retrieve(app, files, query(), 5))
    const text = await timed(() => app.database.documents.matchingChunks(fileIds, searchWords(query()), 50))
    // The vector half as served (int8 rows from the cache) beside an exact float32 scan of the same vectors.
    const model = 'nomic-embed-text'
    const exact = await Promise.all(fileIds.map((id) => app.database.documents.fileVectors(id, model)))
    const exactNearest = (vector: Float32Array) => {
      const best: Array<{ id: number; score: number }> = []
      for (const { ids, vectors: matrix } of exact) {
        for (let row = 0; row < ids.length; row++) {
          let score = 0
          for (let index = 0; index < EMBED_DIMENSIONS; index++) score += matrix[row * EMBED_DIMENSIONS + index]! * vector[index]!
          if (best.length < 50 || score > best.at(-1)!.score) {
            best.push({ id: ids[row]!, score })
            best.sort((a, b) => b.score - a.score)
            if (best.length > 50) best.pop()
          }
        }
      }
      return best.map((entry) => entry.id)
    }
    const servedNearest = (vector: Float32Array) => nearestChunks((file) => app.vectors.get(app.database.documents, file.id, model), files, vector, 50)
    const vectors = await timed(() => servedNearest(Float32Array.from(embeddingOf(query()))))
    const exactVectors = await timed(async () => exactNearest(Float32Array.from(embeddingOf(query()))))
    let kept = 0
    for (const text of QUERIES) {
      const vector = Float32Array.from(embeddingOf(text))
      const truth = new Set(exactNearest(vector))
      kept += (await servedNearest(vector)).filter((id) => truth.has(id)).length
    }
    const recall = kept / (QUERIES.length * 50)
    const row = (what: string, { p50, p99 }: { p50: number; p99: number }, target: string) => [store, String(chunks), what, `${p50.toFixed(1)} ms`, `${p99.toFixed(1)} ms`, target]
    return [
      row('hybrid (words + vectors, fused; the query embedded by the fake)', hybrid, chunks <= 10_000 ? 'p99 <= 50 ms' : ''),
      row('full-text half alone (baseline)', text, ''),
      row('vector half alone, int8 rows cached (as served)', vectors, ''),
      row('vector half alone, exact float32 scan (baseline)', exactVectors, ''),
      [store, String(chunks), 'int8 top 50 found by the exact scan (recall)', `${(recall * 100).toFixed(1)} %`, '', ''],
      [store, String(chunks), `seeding (${FILES} files)`, `${seedSeconds.toFixed(1)} s`, '', ''],
    ]
  } finally {
    await app.ingestion.close()
    await app.database.close()
    await fake.close()
  }
}

/** Pages per second of a PDF of `pages` pages, from upload to completed, through the server. */
export async function ingestionRate(store: 'sqlite' | 'postgres', pages: number): Promise<string[]> {
  const fake = await startFakeOllama({ models: [...DEFAULT_MODELS, EMBED] })
  const running = await startServer(loadConfig({ ...(await storeEnv(store)), PORT: '0', OLLAMA_HOST: fake.hostPort, LOG_LEVEL: 'error' }), { log: silentLogger })
  try {
    const pdf = makePdf(Array.from({ length: pages }, (_, page) => Array.from({ length: 40 }, (_, line) => textOf(page * 40 + line).slice(0, 90))))
    const started = performance.now()
    const file = await (await uploadRequest(running.url, pdf, 'bench.pdf')).json() as { id: string }
    await new Promise<void>((resolve) => running.app.ingestion.finished.addEventListener('file', (event) => (event as CustomEvent).detail.id === file.id && resolve()))
    const seconds = (performance.now() - started) / 1000
    const done = (await running.app.database.documents.getFile(file.id, 'local'))!
    return [store, `${pages} pages, ${done.chunks_total} chunks (${done.status})`, `${seconds.toFixed(2)} s`, `${(pages / seconds).toFixed(0)} pages/s`]
  } finally {
    await running.shutdown()
    await fake.close()
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { store: { type: 'string', default: 'sqlite' }, chunks: { type: 'string', default: '10000' }, pages: { type: 'string', default: '200' } } })
  const store = values.store === 'postgres' ? 'postgres' : 'sqlite'
  console.log(await ingestionRate(store, Number(values.pages)))
  for (const row of await retrievalAtScale(store, Number(values.chunks))) console.log(row.join(' | '))
  process.exit(0)
}
