import * as v from 'valibot'
import { decodeCursor, encodeCursor } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { searchWords, snippetOf } from '../lib/conversations/search.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

/** How deep a search may be paged: the best matches come first, and few read past them. */
const MAX_OFFSET = 1000
const SEARCH_CURSOR = v.pipe(v.strictTuple([v.literal('search'), v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_OFFSET))]), v.transform(([, offset]) => offset))

const Query = v.object({
  q: v.pipe(v.string('must be a single value'), v.maxLength(2000, 'must be at most 2000 characters')),
  limit: queryInteger(1, 50, 20),
  cursor: v.optional(v.string('must be a single value')),
})

/**
 * GET /v1/search?q=…: the caller's own session titles and messages (every branch; not a reply
 * still streaming) holding every word of `q` (as the start of a word there; case and accents do
 * not matter), best matches first, then newest; each with a snippet and where the words are in it.
 */
export default defineFunction({
  name: 'search',
  method: 'GET',
  path: '/v1/search',
  async handle(_request, { app, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const offset = decodeCursor(query.cursor, SEARCH_CURSOR) ?? 0
    const words = searchWords(query.q)
    if (words.length === 0) return Response.json({ results: [], next_cursor: null })
    const hits = await app.store.search(principal.userId, words, query.limit + 1, offset)
    const results = hits.slice(0, query.limit).map((hit) => ({
      session_id: hit.sessionId,
      session_title: hit.sessionTitle,
      message_id: hit.messageId,
      role: hit.role,
      ...snippetOf(hit.text, words),
      created_at: hit.createdAt,
    }))
    const next = hits.length > query.limit && offset + query.limit <= MAX_OFFSET ? encodeCursor(['search', offset + query.limit]) : null
    return Response.json({ results, next_cursor: next })
  },
})
