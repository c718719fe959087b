import type { SearchHit } from './chat-store.ts'

/** Search over a user's titles and messages (docs/api.md "Search"). */
export interface SearchStore {
  /**
   * `ownerId`'s session titles and messages (every branch, not streaming replies) holding every
   * word (each a prefix of a word there; lowercase, without accents, letters and digits only),
   * best matches first (bm25 / ts_rank), then newest: `limit` of them from `offset`.
   */
  search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]>
}
