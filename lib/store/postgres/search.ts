import { toSearchHit, SEARCH_TEXT_CHARS, type SearchHit } from '../chat-store.ts'
import type { SearchStore } from '../search-store.ts'
import { PostgresPart } from './part.ts'

export class PostgresSearch extends PostgresPart implements SearchStore {

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    // Words are letters and digits only: as prefixes (:*), all of them (&).
    const query = words.map((word) => `${word}:*`).join(' & ')
    const rows = await (await this.db())`
      WITH q AS (SELECT to_tsquery('simple', ${query}) AS query)
      SELECT session_id, title, message_id, role, text, created_at FROM (
        SELECT s.id AS session_id, s.title, m.id AS message_id, m.role, left(m.content, ${SEARCH_TEXT_CHARS}) AS text, m.created_at, ts_rank(m.search, q.query) AS score
        FROM q, messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.search @@ q.query AND s.owner_id = ${ownerId} AND m.status <> 'streaming'
        UNION ALL
        SELECT s.id, s.title, NULL, NULL, s.title, s.created_at, ts_rank(search_vector(s.title), q.query)
        FROM q, sessions s WHERE search_vector(s.title) @@ q.query AND s.owner_id = ${ownerId}) hits
      ORDER BY score DESC, created_at DESC, session_id, message_id NULLS FIRST LIMIT ${limit} OFFSET ${offset}`
    return rows.map(toSearchHit)
  }
}
