import { SEARCH_TEXT_CHARS, SEARCH_WINDOW, toSearchHit, type SearchHit } from '../chat-store.ts'
import type { SearchStore } from '../search-store.ts'
import { SqliteRole } from './database.ts'
import { searchAndRank } from './search-rank.ts'
import { ReadWorker } from './search-worker.ts'

/** The newest SEARCH_WINDOW matches of each kind, for searchAndRank. */
const SEARCH_SQL = {
  messages: `SELECT s.id AS session_id, s.title, m.id AS message_id, m.role,
      -- COALESCE reads no further than it must: a long message's row only up to its text (023).
      COALESCE(f.head, substr(m.content, 1, ${SEARCH_TEXT_CHARS})) AS text, COALESCE(f.created_at, m.created_at) AS created_at
    FROM messages_fts f JOIN messages m ON m.rowid = f.rowid JOIN sessions s ON s.id = m.session_id
    WHERE messages_fts MATCH ?1 AND s.owner_id = ?2
    ORDER BY f.rowid DESC LIMIT ${SEARCH_WINDOW}`,
  titles: `SELECT s.id AS session_id, s.title, NULL AS message_id, NULL AS role, s.title AS text, s.created_at
    FROM sessions_fts JOIN sessions s ON s.rowid = sessions_fts.rowid
    WHERE sessions_fts MATCH ?1 AND s.owner_id = ?2
    ORDER BY sessions_fts.rowid DESC LIMIT ${SEARCH_WINDOW}`,
}

type SearchArgs = [window: number, ownerId: string, words: string[], limit: number, offset: number]

export class SqliteSearch extends SqliteRole implements SearchStore {
  private worker: ReadWorker<keyof typeof SEARCH_SQL, SearchArgs> | undefined
  readonly statements = this.prepare(SEARCH_SQL)

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    const args: SearchArgs = [SEARCH_WINDOW, ownerId, words, limit, offset]
    // A file is searched off the event loop; an in-memory database has no second connection.
    if (this.database.path === ':memory:') {
      return searchAndRank((name, match, owner) => this.statements[name].all(match, owner), ...args).map(toSearchHit)
    }
    this.worker ??= new ReadWorker(this.database.path, SEARCH_SQL, searchAndRank)
    return (await this.worker.run(args)).map(toSearchHit)
  }

  async close(): Promise<void> {
    await this.worker?.close()
  }
}
