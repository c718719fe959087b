/**
 * The worker thread that reads one file (lib/documents/extract.ts) or one fetched web page
 * (lib/tools/builtin/page-reader.ts), one thread each: a hostile file costs this thread, which is
 * ended when it runs out of time or memory, never the server. One worker for both, so that a
 * bundle embeds the readers (pdf.js above all) once.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { chunkSections } from './chunking.ts'
import { EXTRACTORS } from './extractors/index.ts'
import { readablePage } from './extractors/html.ts'
import { ExtractError, type ExtractLimits } from './extractors/section.ts'
import type { FileKind } from '../store/document-store.ts'

const { kind, data, limits, page } = workerData as { kind: FileKind; data: Uint8Array; limits: ExtractLimits; page?: { charset: string | undefined } }
// Not a top-level await: the bundled worker is a plain script (build.mjs).
void (async () => {
  try {
    if (page) {
      // A web page: HTML's main content (Readability), other kinds whole, as one text with its title.
      if (kind === 'html') return parentPort!.postMessage(readablePage(data, page.charset))
      const { sections } = await EXTRACTORS[kind](data, limits)
      return parentPort!.postMessage({ title: '', text: sections.map((section) => section.text).join('\n\n') })
    }
    // Cut here too: a long text's chunking is work the size of the file, kept off the server's thread.
    const { sections, pages } = await EXTRACTORS[kind](data, limits)
    parentPort!.postMessage({ extracted: { pages, chunks: chunkSections(sections) } })
  } catch (error) {
    parentPort!.postMessage({ error: error instanceof ExtractError ? error.message : `the ${kind} file cannot be read: ${(error as Error)?.message ?? error}` })
  }
})()
