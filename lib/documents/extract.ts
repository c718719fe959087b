import { oneShotWorker } from '../shared/one-shot-worker.ts'
import type { FileKind } from '../store/document-store.ts'
import type { NewChunk } from '../store/document-store.ts'
import { ExtractError, type ExtractLimits } from './extractors/section.ts'

/** A file read and cut: its chunks (lib/documents/chunking.ts), and its pages when it has any. */
export interface ExtractedChunks {
  chunks: NewChunk[]
  pages: number | null
}

declare const __EXTRACT_WORKER__: string | undefined

/** What an extraction may take (docs/documents.md "Limits"): fixed, so a hostile file fails alike everywhere. */
export const EXTRACT_LIMITS: ExtractLimits & { timeoutMs: number; memoryMb: number } = {
  maxPages: 2000,
  maxChars: 10_000_000,
  maxUnzippedBytes: 256 * 1024 ** 2,
  timeoutMs: 120_000,
  memoryMb: 512,
}

/**
 * The text of a file of `kind` in chunks, read and cut in a worker thread of its own with a memory limit, ended after
 * `timeoutMs`. Rejects with an ExtractError saying why the file cannot be read.
 */
/** The reader's thread: its file (tests, tsx), or its source as build.mjs embeds it. */
export const extractWorker = { file: new URL('./extract-worker.ts', import.meta.url), bundled: typeof __EXTRACT_WORKER__ === 'undefined' ? undefined : __EXTRACT_WORKER__ }

export async function extractFile(kind: FileKind, data: Uint8Array, limits = EXTRACT_LIMITS): Promise<ExtractedChunks> {
  const answer = await oneShotWorker<{ extracted?: ExtractedChunks; error?: string }>(
    extractWorker,
    { kind, data, limits },
    limits,
    (why, error) => new ExtractError(why === 'timeout' ? `reading the file took longer than ${limits.timeoutMs / 1000} s`
      : why === 'memory' ? `reading the file needed more than ${limits.memoryMb} MB`
      : error ? `the file cannot be read: ${error.message}` : 'the file cannot be read: its reader stopped'),
  )
  if (answer.extracted) return answer.extracted
  throw new ExtractError(answer.error ?? 'the file cannot be read')
}
