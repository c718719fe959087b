import type { TokenEstimator } from '../generation/context-budget.ts'
import type { RetrievedChunk } from './retrieval.ts'
import type { PromptMessage } from '../store/chat-store.ts'

/**
 * Retrieved chunks as a model is given them (docs/documents.md "Sources"): numbered, within a
 * share of the context budget, with the instruction to cite them as [n]; and the [n] markers an
 * answer holds, for OpenAI's `file_citation` annotations.
 */

/** The share of a turn's context budget its sources may take. */
export const SOURCES_SHARE = 0.4

/**
 * The best sources whose prompt fits in `tokens` (counted as the conversation is, by the model's
 * calibrated estimate), renumbered in order, and the tokens they take.
 */
export function sourcesWithin(tokens: Pick<TokenEstimator, 'estimate'>, model: string, sources: RetrievedChunk[], budget: number): { sources: RetrievedChunk[]; tokens: number } {
  for (let count = sources.length; count > 0; count--) {
    const kept = sources.slice(0, count).map((source, index) => ({ ...source, n: index + 1 }))
    const estimated = tokens.estimate(model, [sourcesMessage(kept)])
    if (estimated <= budget) return { sources: kept, tokens: estimated }
  }
  return { sources: [], tokens: 0 }
}

/** The system message the sources go in, just before the question (and counted as sent). */
export const sourcesMessage = (sources: RetrievedChunk[]): PromptMessage => ({ id: null, role: 'system', content: sourcesPrompt(sources) })

/** The sources as the model is given them: numbered, with where each comes from, and how to cite them. */
function sourcesPrompt(sources: RetrievedChunk[]): string {
  const where = (source: RetrievedChunk) => [source.filename, source.page === null ? null : `page ${source.page}`, source.heading].filter(Boolean).join(', ')
  return [
    'Answer from the sources below when they hold the answer, and cite each source you use by its number in brackets, such as [1]. If they do not hold the answer, say so, then answer as you can.',
    ...sources.map((source) => `[${source.n}] ${where(source)}\n${source.content}`),
  ].join('\n\n')
}

/** A marker such as [2] or [1, 3] (also [1][3], as two). */
const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3}){0,9})\]/g

/**
 * Each citation of one of `count` sources in `text`, in order: the source's number, and where its
 * marker starts and ends. Numbers past `count` (a model's invention) are not citations.
 */
export function citationsIn(text: string, count: number): Array<{ n: number; index: number; end: number }> {
  if (count === 0) return []
  const found: Array<{ n: number; index: number; end: number }> = []
  for (const match of text.matchAll(MARKER)) {
    for (const number of match[1]!.split(',')) {
      const n = Number(number.trim())
      if (n >= 1 && n <= count) found.push({ n, index: match.index, end: match.index + match[0].length })
    }
  }
  return found
}
