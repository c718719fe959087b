/**
 * Search text: the words of a query as the store matches them, and where they matched in a
 * result's text (README "Search").
 */

/** Most words a query is read for; more are ignored. */
const MAX_WORDS = 16
/** Characters of a message shown around its first match. */
const SNIPPET_CHARS = 200

/** Lowercase, accents taken off (é → e), as both stores' indexes compare. */
const fold = (text: string) => text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()

/** The words of `query`: letters and digits only, folded, each once. Anything else is a separator, never syntax. */
export function searchWords(query: string): string[] {
  const words = fold(query).split(/[^\p{L}\p{N}]+/u).filter(Boolean)
  return [...new Set(words)].slice(0, MAX_WORDS)
}

/**
 * The part of `text` to show (all of it when short, else SNIPPET_CHARS around the first match,
 * with … where it was cut), and the [start, end) of each of its words that starts with one of
 * `words`, in UTF-16 code units of the snippet.
 */
export function snippetOf(text: string, words: string[]): { snippet: string; highlights: Array<[number, number]> } {
  const matches = matchesIn(text, words)
  if (text.length <= SNIPPET_CHARS) return { snippet: text, highlights: matches }
  const first = matches[0]?.[0] ?? 0
  let start = Math.max(0, first - SNIPPET_CHARS / 4)
  // Never split a surrogate pair.
  if (start > 0 && /[\uDC00-\uDFFF]/.test(text[start]!)) start--
  let end = Math.min(text.length, start + SNIPPET_CHARS)
  if (end < text.length && /[\uDC00-\uDFFF]/.test(text[end]!)) end++
  const prefix = start > 0 ? '…' : ''
  const snippet = `${prefix}${text.slice(start, end)}${end < text.length ? '…' : ''}`
  const highlights = matches
    .filter(([from, to]) => from >= start && to <= end)
    .map(([from, to]): [number, number] => [from - start + prefix.length, to - start + prefix.length])
  return { snippet, highlights }
}

function matchesIn(text: string, words: string[]): Array<[number, number]> {
  const found: Array<[number, number]> = []
  // Letters with their combining marks, and digits: a word as the indexes see one.
  for (const match of text.matchAll(/[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu)) {
    const folded = fold(match[0])
    if (words.some((word) => folded.startsWith(word))) found.push([match.index, match.index + match[0].length])
  }
  return found
}
