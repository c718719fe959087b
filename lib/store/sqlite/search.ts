import { SEARCH_TEXT_CHARS, toSearchHit, type SearchHit } from '../chat-store.ts'
import type { SearchStore } from '../search-store.ts'
import { SqliteRole } from './database.ts'
import { ReadWorker } from './search-worker.ts'

/** How many of the newest matches of a search are ranked (docs/api.md "Search"). */
export const SEARCH_WINDOW = 500

/**
 * The newest SEARCH_WINDOW matches of each kind, ranked (bm25 runs per row it returns): a word in
 * most messages costs a window, not the whole index.
 */
const SEARCH_SQL = `SELECT session_id, title, message_id, role, text, created_at FROM (
    SELECT * FROM (
      SELECT s.id AS session_id, s.title, m.id AS message_id, m.role,
        -- COALESCE reads no further than it must: a long message's row only up to its text (023).
        COALESCE(f.head, substr(m.content, 1, ${SEARCH_TEXT_CHARS})) AS text, COALESCE(f.created_at, m.created_at) AS created_at,
        bm25(messages_fts) AS score
      FROM messages_fts f JOIN messages m ON m.rowid = f.rowid JOIN sessions s ON s.id = m.session_id
      WHERE messages_fts MATCH ?1 AND s.owner_id = ?2
      ORDER BY f.rowid DESC LIMIT ${SEARCH_WINDOW})
    UNION ALL
    SELECT * FROM (
      SELECT s.id, s.title, NULL, NULL, s.title, s.created_at, bm25(sessions_fts)
      FROM sessions_fts JOIN sessions s ON s.rowid = sessions_fts.rowid
      WHERE sessions_fts MATCH ?1 AND s.owner_id = ?2
      ORDER BY sessions_fts.rowid DESC LIMIT ${SEARCH_WINDOW}))
  ORDER BY score, created_at DESC, session_id, message_id LIMIT ?3 OFFSET ?4`

export class SqliteSearch extends SqliteRole implements SearchStore {
  private worker: ReadWorker | undefined
  readonly statements = this.prepare({ search: SEARCH_SQL })

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    // Each word quoted (data, never query syntax) and a prefix; FTS5 ANDs them.
    const match = words.map((word) => `"${word}"*`).join(' ')
    // A file is searched off the event loop; an in-memory database has no second connection.
    if (this.database.path === ':memory:') return this.statements.search.all(match, ownerId, limit, offset).map(toSearchHit)
    this.worker ??= new ReadWorker(this.database.path, SEARCH_SQL)
    return (await this.worker.all(match, ownerId, limit, offset)).map(toSearchHit)
  }

  async close(): Promise<void> {
    await this.worker?.close()
  }
}
