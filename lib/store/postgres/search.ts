import type { Sql } from 'postgres'
import { toSearchHit, SEARCH_TEXT_CHARS, SEARCH_WINDOW, type SearchHit } from '../chat-store.ts'
import type { SearchStore } from '../search-store.ts'
import { PostgresPart } from './part.ts'

/**
 * How many of the newest messages (of every owner) are read one by one before the index is: words
 * in at least a tenth of them fill a window there (a word in most of a million messages: ~5 ms),
 * while the index would read every row holding them (~0.4-1.5 s).
 */
const RECENT_MESSAGES = 5_000

/**
 * The same matches as SQLite's (lib/store/sqlite/search-rank.ts): the newest SEARCH_WINDOW
 * messages holding every word whole when there are that many, else every word as a prefix, and the
 * newest SEARCH_WINDOW titles holding them as prefixes; ranked by ts_rank over the stored vectors.
 */
export class PostgresSearch extends PostgresPart implements SearchStore {

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    return (await this.db()).begin('READ ONLY', async (sql) => {
      // A parallel plan, which the index's guesses for common prefixes bring, takes ~20 ms to start.
      await sql`SET LOCAL max_parallel_workers_per_gather = 0`
      return this.searchIn(sql as unknown as Sql, ownerId, words, limit, offset)
    })
  }

  private async searchIn(sql: Sql, ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    // Words are letters and digits only: all of them (&), whole, then as prefixes (:*).
    const whole = words.join(' & ')
    const prefixes = words.map((word) => `${word}:*`).join(' & ')
    let query = whole
    let window = await this.newestMatches(sql, ownerId, whole)
    if (window.length < SEARCH_WINDOW) [query, window] = [prefixes, await this.newestMatches(sql, ownerId, prefixes)]
    const rows = await sql`
      WITH q AS (SELECT to_tsquery('simple', ${query}) AS query, to_tsquery('simple', ${prefixes}) AS titles)
      SELECT session_id, title, message_id, role, text, created_at FROM (
        SELECT s.id AS session_id, s.title, m.id AS message_id, m.role, left(m.content, ${SEARCH_TEXT_CHARS}) AS text, m.created_at, ts_rank(m.search, q.query) AS score, m.seq
        FROM q, messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.seq = ANY(${window}::bigint[])
        UNION ALL
        SELECT * FROM (
          SELECT s.id, s.title, NULL, NULL, s.title, s.created_at, ts_rank(search_vector(s.title), q.titles), NULL::bigint
          FROM q, sessions s WHERE search_vector(s.title) @@ q.titles AND s.owner_id = ${ownerId}
          ORDER BY s.created_at DESC, s.id DESC LIMIT ${SEARCH_WINDOW}) titles) hits
      ORDER BY score DESC, created_at DESC, message_id IS NULL DESC, seq DESC LIMIT ${limit} OFFSET ${offset}`
    return rows.map(toSearchHit)
  }

  /** The seq of the newest SEARCH_WINDOW finished messages of `ownerId` that match `query`. */
  private async newestMatches(sql: Sql, ownerId: string, query: string): Promise<string[]> {
    const recent = await sql`
      WITH q AS (SELECT to_tsquery('simple', ${query}) AS query)
      SELECT m.seq FROM q,
        -- OFFSET 0 keeps the planner to these rows, read in order, whatever it guesses of the words.
        (SELECT * FROM messages WHERE seq > (SELECT coalesce(max(seq), 0) FROM messages) - ${RECENT_MESSAGES} OFFSET 0) m
        JOIN sessions s ON s.id = m.session_id
      WHERE m.search @@ q.query AND s.owner_id = ${ownerId} AND m.status <> 'streaming'
      ORDER BY m.seq DESC LIMIT ${SEARCH_WINDOW}`
    if (recent.length === SEARCH_WINDOW) return recent.map((row) => String(row.seq))
    // Fewer there: the index, read whole. "seq + 0" keeps the planner from walking every message
    // newest first instead, which reads them all for a word in no recent message (~1 s).
    const rows = await sql`
      WITH q AS (SELECT to_tsquery('simple', ${query}) AS query)
      SELECT m.seq FROM q, messages m JOIN sessions s ON s.id = m.session_id
      WHERE m.search @@ q.query AND s.owner_id = ${ownerId} AND m.status <> 'streaming'
      ORDER BY m.seq + 0 DESC LIMIT ${SEARCH_WINDOW}`
    return rows.map((row) => String(row.seq))
  }
}
