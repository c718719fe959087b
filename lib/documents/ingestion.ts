import type { Config } from '../shared/config.ts'
import type { Logger } from '../observability/log.ts'
import type { OllamaPool } from '../ollama/pool.ts'
import type { DocumentStore, StoredFile } from '../store/document-store.ts'
import { HttpProblem } from '../shared/problem.ts'
import { EMBED_BATCH, embedTexts } from './embedding.ts'
import { ExtractError } from './extractors/section.ts'
import type { ExtractedChunks } from './extract.ts'
import type { FileKind } from '../store/document-store.ts'

/** How long a claim holds without a write (each batch renews it); past it another worker takes the file. */
const LEASE_MS = 60_000
/** How often an idle worker looks for files another instance took in, or a dead one left. */
const POLL_MS = 5_000
/** Waits after Ollama failed a file's batch, doubling per attempt. */
const RETRY_MS = 2_000
const MAX_RETRY_MS = 5 * 60_000
/** Chunks of deleted files removed per idle round. */
const PURGE_BATCH = 2_000

const later = (ms: number) => new Date(Date.now() + ms).toISOString()

/** Reads a file's text (lib/documents/extract.ts): given by the entry points that bundle the readers. */
export type Extractor = (kind: FileKind, data: Uint8Array) => Promise<ExtractedChunks>

export interface IngestionDeps {
  store: DocumentStore
  ollama: OllamaPool
  config: Pick<Config, 'embedModel' | 'chatTimeoutMs' | 'userMaxChunks' | 'instanceId'>
  log: Logger
}

/**
 * Ingestion in the background (docs/documents.md): files `in_progress` are taken one at a time,
 * their text extracted in a worker thread and cut into chunks, and the chunks embedded by
 * EMBED_MODEL a batch at a time, each batch stored with the progress it makes. A restart, or on
 * PostgreSQL any instance, takes up a file where it was left; files embedded by another model are
 * embedded again. Ollama failing keeps a file waiting (with why in `last_error`), not failed.
 */
export class Ingestion {
  private readonly deps: IngestionDeps
  private readonly worker: string
  private running: Promise<void> | undefined
  private wakeUp: (() => void) | undefined
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly controller = new AbortController()
  /** When the soonest file given back for a retry may be taken again. */
  private nextRetryAt: number | undefined
  /** Attempts of each file that Ollama failed, for the backoff. */
  private readonly retries = new Map<string, number>()
  /** Files finished (completed or failed) by this worker: tests and the page wait on it. */
  readonly finished = new EventTarget()

  constructor(deps: IngestionDeps) {
    this.deps = deps
    this.worker = `${deps.config.instanceId}:${process.pid}`
  }

  private extract: Extractor | undefined

  /**
   * Starts the loop if it is not running, or wakes it to look for work now (after an upload). It
   * runs once it has been given the extractor: the readers of PDF and DOCX are large, and only the
   * bundles that ingest (the server, the upload function) carry them (lib/documents/extract.ts).
   */
  wake(extract?: Extractor): void {
    this.extract ??= extract
    if (this.closed || !this.extract) return
    if (this.wakeUp) this.wakeUp()
    this.running ??= this.loop().finally(() => (this.running = undefined))
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      let worked = false
      try {
        worked = await this.step()
      } catch (error) {
        if (this.closed) return
        this.deps.log.error('document ingestion failed a round', { error })
      }
      if (worked || this.closed) continue
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve
        // A file given back for a retry here is looked at when its wait ends, not at the next poll.
        const retryInMs = this.nextRetryAt === undefined ? POLL_MS : Math.max(0, this.nextRetryAt - Date.now())
        this.nextRetryAt = undefined
        this.timer = setTimeout(resolve, Math.min(POLL_MS, retryInMs))
        this.timer.unref()
      })
      clearTimeout(this.timer)
      this.wakeUp = undefined
    }
  }

  /** One file taken and worked on, or the chunks of deleted files purged; whether there was work. */
  private async step(): Promise<boolean> {
    const { store, config } = this.deps
    const claimed = await store.claimFile(this.worker, config.embedModel, later(LEASE_MS))
    if (!claimed) return (await store.purgeDeletedChunks(PURGE_BATCH)) > 0
    const { file, data } = claimed
    try {
      if (data) {
        const chunked = await this.chunk(file, data)
        if (chunked !== 'stored') return true
      }
      await this.embed(file)
      if (this.closed) return true
      if (await store.finishFile(file.id, this.worker, { status: 'completed', embedModel: config.embedModel }, new Date().toISOString())) {
        this.retries.delete(file.id)
        this.deps.log.info('document ingested', { file_id: file.id, kind: file.kind, embed_model: config.embedModel })
        this.finished.dispatchEvent(new CustomEvent('file', { detail: { id: file.id, status: 'completed' } }))
      }
    } catch (error) {
      if (this.closed) return true
      await this.failedOn(file, error)
    }
    return true
  }

  private async chunk(file: StoredFile, data: Uint8Array): Promise<'stored' | 'lost' | 'failed'> {
    const { store, config } = this.deps
    const { chunks, pages } = await this.extract!(file.kind, data)
    if (chunks.length === 0) throw new ExtractError('the file holds no text (a scanned PDF needs OCR first)')
    const stored = await store.storeChunks(file.id, this.worker, chunks, pages, config.userMaxChunks, later(LEASE_MS))
    if (stored === 'over_limit') {
      await this.fail(file, `its ${chunks.length} chunks would take its owner past ${config.userMaxChunks} chunks (USER_MAX_CHUNKS)`)
      return 'failed'
    }
    return stored
  }

  private async embed(file: StoredFile): Promise<void> {
    const { store, config } = this.deps
    for (;;) {
      const pending = await store.chunksToEmbed(file.id, config.embedModel, EMBED_BATCH)
      if (pending.length === 0 || this.closed) return
      // Each chunk is embedded under its headings: "Cleaning" tells what a short paragraph is about.
      const texts = pending.map((chunk) => (chunk.heading ? `${chunk.heading}\n\n${chunk.content}` : chunk.content))
      const { vectors } = await embedTexts(this.deps.ollama, config.embedModel, texts, { timeoutMs: config.chatTimeoutMs, signal: this.controller.signal })
      const held = await store.storeEmbeddings(file.id, this.worker, config.embedModel, pending.map((chunk, index) => ({ id: chunk.id, vector: vectors[index]! })), later(LEASE_MS))
      if (!held) return
    }
  }

  /** A file that cannot be read, or a model that cannot embed, fails the file; Ollama away or failing only delays it. */
  private async failedOn(file: StoredFile, error: unknown): Promise<void> {
    if (error instanceof ExtractError) return this.fail(file, error.message)
    if (error instanceof HttpProblem && (error.status === 400 || error.status === 404)) {
      const { embedModel } = this.deps.config
      return this.fail(file, error.status === 404 ? `EMBED_MODEL ${embedModel} is not installed in Ollama (ollama pull ${embedModel})` : error.detail)
    }
    const attempt = (this.retries.get(file.id) ?? 0) + 1
    this.retries.set(file.id, attempt)
    const waitMs = Math.min(MAX_RETRY_MS, RETRY_MS * 2 ** (attempt - 1))
    const fromOllama = error instanceof HttpProblem && error.kind === 'ollama'
    const why = error instanceof HttpProblem ? error.detail : (error as Error).message
    if (fromOllama) this.deps.log.warn('document ingestion waits for Ollama', { file_id: file.id, attempt, retry_in_ms: waitMs, error: why })
    else this.deps.log.error('document ingestion failed; it will retry', { file_id: file.id, attempt, retry_in_ms: waitMs, error })
    this.nextRetryAt = Math.min(this.nextRetryAt ?? Infinity, Date.now() + waitMs)
    await this.deps.store.deferFile(file.id, this.worker, later(waitMs), fromOllama ? `waiting for Ollama: ${why}` : `retrying after an error: ${why}`)
  }

  private async fail(file: StoredFile, why: string): Promise<void> {
    this.retries.delete(file.id)
    if (await this.deps.store.finishFile(file.id, this.worker, { status: 'failed', error: why }, new Date().toISOString())) {
      this.deps.log.warn('document ingestion failed the file', { file_id: file.id, kind: file.kind, error: why })
      this.finished.dispatchEvent(new CustomEvent('file', { detail: { id: file.id, status: 'failed' } }))
    }
  }

  /** Stops taking files and ends the current one's Ollama call; its claim lapses, and the next run takes the file again. */
  async close(): Promise<void> {
    this.closed = true
    this.controller.abort()
    clearTimeout(this.timer)
    this.wakeUp?.()
    await this.running
  }
}
