/**
 * The worker thread that reads one file's text and cuts it into chunks (lib/documents/extract.ts
 * starts one per file):
 * a hostile file costs this thread, which is ended when it runs out of time or memory, never the server.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { chunkSections } from './chunking.ts'
import { EXTRACTORS } from './extractors/index.ts'
import { ExtractError, type ExtractLimits } from './extractors/section.ts'
import type { FileKind } from '../store/document-store.ts'

const { kind, data, limits } = workerData as { kind: FileKind; data: Uint8Array; limits: ExtractLimits }
// Not a top-level await: the bundled worker is a plain script (build.mjs).
void (async () => {
  try {
    // Cut here too: a long text's chunking is work the size of the file, kept off the server's thread.
    const { sections, pages } = await EXTRACTORS[kind](data, limits)
    parentPort!.postMessage({ extracted: { pages, chunks: chunkSections(sections) } })
  } catch (error) {
    parentPort!.postMessage({ error: error instanceof ExtractError ? error.message : `the ${kind} file cannot be read: ${(error as Error)?.message ?? error}` })
  }
})()
