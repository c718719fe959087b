/**
 * Search text: the words of a query as the store matches them, and where they matched in a
 * result's text (docs/api.md "Search").
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
 * `words`, in UTF-16 code units of the snippet. Only the snippet's own words are looked at word by
 * word; the first match is found in the folded text by one regular expression.
 */
export function snippetOf(text: string, words: string[]): { snippet: string; highlights: Array<[number, number]> } {
  if (text.length <= SNIPPET_CHARS) return { snippet: text, highlights: matchesIn(text, words, 0, text.length) }
  const first = firstMatch(text, words)
  let start = Math.max(0, first - SNIPPET_CHARS / 4)
  // Never split a surrogate pair.
  if (start > 0 && /[\uDC00-\uDFFF]/.test(text[start]!)) start--
  let end = Math.min(text.length, start + SNIPPET_CHARS)
  if (end < text.length && /[\uDC00-\uDFFF]/.test(text[end]!)) end++
  const prefix = start > 0 ? '…' : ''
  const snippet = `${prefix}${text.slice(start, end)}${end < text.length ? '…' : ''}`
  const highlights = matchesIn(text, words, start, end).map(([from, to]): [number, number] => [from - start + prefix.length, to - start + prefix.length])
  return { snippet, highlights }
}

/** A word as the indexes see one: letters with their combining marks, and digits. */
const WORD = /[\p{L}\p{N}][\p{L}\p{N}\p{M}]*/gu

/**
 * Where the first word of `text` that starts with one of `words` begins; 0 when none does. The
 * folded text is searched at once; as folding moves positions a little (marks dropped, ligatures
 * spread), the text itself is then read word by word from just before there.
 */
function firstMatch(text: string, words: string[]): number {
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}\\p{M}])(?:${words.join('|')})`, 'u')
  const folded = fold(text).search(pattern)
  if (folded === -1) return 0
  for (const from of [Math.max(0, folded - 256), 0]) {
    const [match] = matchesIn(text, words, from, text.length, 1)
    if (match) return match[0]
  }
  return 0
}

/** The words of `text[from, to)` that start with one of `words` (at most `most`), as [start, end) in `text`. */
function matchesIn(text: string, words: string[], from: number, to: number, most = Infinity): Array<[number, number]> {
  const found: Array<[number, number]> = []
  const word = new RegExp(WORD)
  // Read from a little before: a word cut at `from` is not taken for one that starts there.
  word.lastIndex = Math.max(0, from - 64)
  for (let match = word.exec(text); match && match.index < to && found.length < most; match = word.exec(text)) {
    const end = match.index + match[0].length
    if (end > to) break
    if (match.index < from) continue
    const folded = fold(match[0])
    if (words.some((candidate) => folded.startsWith(candidate))) found.push([match.index, end])
  }
  return found
}
