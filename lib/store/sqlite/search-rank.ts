/**
 * A SQLite search (docs/api.md "Search"): the matches it ranks, and how it ranks them, best first.
 *
 * Which matches: the newest SEARCH_WINDOW messages holding every word whole when there are that
 * many, else the newest SEARCH_WINDOW holding every word as a prefix; and the newest
 * SEARCH_WINDOW titles holding every word as a prefix. FTS5 reads a prefix by merging the whole
 * list of rows of every word it begins (a word in most of a million messages: 10-40 ms each),
 * while whole words are read from the newest on and stop at the window (~2 ms).
 *
 * How: FTS5's bm25() counts, on its first call, every row holding each word (its IDF): for words in
 * most of a million messages that was most of a search's time (40 of 41 ms for "answer question
 * 42"). Every row found holds every word, so here each word weighs alike and only how often a row
 * holds them, against its length, ranks it: BM25's term-frequency part (k1 1.2, b 0.75, as FTS5's).
 *
 * Self-contained, without imports or outer names: the search worker runs this function's source.
 */
type Row = Record<string, unknown>
/** The rows of a search statement (`messages` or `titles`) for an FTS5 query and an owner. */
export type RunSearch = (statement: 'messages' | 'titles', match: string, ownerId: string) => Row[]

export function searchAndRank(run: RunSearch, window: number, ownerId: string, words: string[], limit: number, offset: number): Row[] {
  // Each word quoted (data, never query syntax); FTS5 ANDs them.
  const whole = words.map((word) => `"${word}"`)
  const prefixes = whole.map((word) => `${word}*`).join(' ')
  // Each statement returns its window newest first.
  let messages = run('messages', whole.join(' '), ownerId)
  if (messages.length < window) messages = run('messages', prefixes, ownerId)
  const titles = run('titles', prefixes, ownerId)

  const k1 = 1.2
  const b = 0.75
  const counted = [...messages, ...titles].map((row) => {
    // Folded as the index folds (case, accents); a word is a run of letters and digits.
    const folded = String(row.text).normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase()
    const hits = words.map(() => 0)
    let length = 0
    for (const [token] of folded.matchAll(/[\p{L}\p{N}]+/gu)) {
      length++
      for (let index = 0; index < words.length; index++) if (token.startsWith(words[index]!)) hits[index]!++
    }
    return { row, hits, length, title: row.message_id === null, score: 0 }
  })
  // Titles and messages are each ranked against their own mean length, as each has its own index.
  for (const title of [true, false]) {
    const kind = counted.filter((entry) => entry.title === title)
    const meanLength = kind.reduce((sum, entry) => sum + entry.length, 0) / Math.max(1, kind.length) || 1
    for (const entry of kind) {
      const norm = k1 * (1 - b + (b * entry.length) / meanLength)
      entry.score = entry.hits.reduce((sum, hits) => sum + (hits * (k1 + 1)) / (hits + norm), 0)
    }
  }
  // Then newest; among equals a title first, then as the window came: the newest written first
  // (a stable sort).
  counted.sort(
    (left, right) =>
      right.score - left.score ||
      String(right.row.created_at).localeCompare(String(left.row.created_at)) ||
      Number(right.title) - Number(left.title),
  )
  return counted.slice(offset, offset + limit).map((entry) => entry.row)
}
