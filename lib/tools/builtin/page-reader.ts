import { EXTRACT_LIMITS, extractWorker } from '../../documents/extract.ts'
import { oneShotWorker } from '../../shared/one-shot-worker.ts'
import { FetchRefused, type FetchedPage } from './checked-fetch.ts'

/**
 * A fetched page as text, read in a worker thread of its own (lib/documents/extract-worker.ts,
 * the documents' reader): HTML's main content as Markdown, a PDF's text, text as it is.
 */
export async function readPage(page: FetchedPage, signal: AbortSignal): Promise<{ title: string; text: string }> {
  const kind = page.kind === 'html' ? 'html' : page.kind === 'pdf' ? 'pdf' : 'text'
  const answer = await oneShotWorker<{ title: string; text: string } | { error: string }>(
    extractWorker,
    { kind, data: page.body, limits: EXTRACT_LIMITS, page: { charset: page.charset } },
    // Bounded by the call's own TOOL_TIMEOUT (signal) first.
    { timeoutMs: EXTRACT_LIMITS.timeoutMs, memoryMb: EXTRACT_LIMITS.memoryMb, signal },
    (why, error) => new FetchRefused(why === 'memory' ? `reading ${page.url} needed more than ${EXTRACT_LIMITS.memoryMb} MB.` : `${page.url} could not be read${error ? `: ${error.message}` : ''}.`),
  )
  if ('error' in answer) throw new FetchRefused(`${page.url} could not be read: ${answer.error}.`)
  return answer
}
