import { Worker } from 'node:worker_threads'
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
export async function extractFile(kind: FileKind, data: Uint8Array, limits = EXTRACT_LIMITS): Promise<ExtractedChunks> {
  const workerData = { kind, data, limits }
  const options = { workerData, resourceLimits: { maxOldGenerationSizeMb: limits.memoryMb, maxYoungGenerationSizeMb: 32 } }
  const thread = typeof __EXTRACT_WORKER__ === 'undefined'
    ? new Worker(new URL('./extract-worker.ts', import.meta.url), options)
    : new Worker(__EXTRACT_WORKER__, { ...options, eval: true })
  return new Promise<ExtractedChunks>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new ExtractError(`reading the file took longer than ${limits.timeoutMs / 1000} s`))
      void thread.terminate()
    }, limits.timeoutMs)
    const settle = () => {
      clearTimeout(timer)
      void thread.terminate()
    }
    thread.once('message', (answer: { extracted?: ExtractedChunks; error?: string }) => {
      settle()
      if (answer.extracted) resolve(answer.extracted)
      else reject(new ExtractError(answer.error ?? 'the file cannot be read'))
    })
    thread.once('error', (error: Error & { code?: string }) => {
      settle()
      reject(new ExtractError(error.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `reading the file needed more than ${limits.memoryMb} MB` : `the file cannot be read: ${error.message}`))
    })
    thread.once('exit', () => {
      clearTimeout(timer)
      reject(new ExtractError('the file cannot be read: its reader stopped'))
    })
  })
}
