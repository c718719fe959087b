import type { ImportedConversation, ImportedMessage } from './chat-store.ts'

/** Imports of whole conversations (docs/api.md "Export and import"), stored in chunks and shown only once whole. */
export interface TransferStore {
  /**
   * Starts storing an imported conversation (its messages follow in chunks, each a short
   * transaction): a new session that nobody sees until finishImport; its id, or `duplicate`
   * (nothing stored) when `ownerId` has this conversation already.
   */
  beginImport(ownerId: string, conversation: ImportedConversation): Promise<string | 'duplicate'>
  /** A chunk of an import's messages, parents before children, their ids and parents this server's. */
  addImportedMessages(sessionId: string, messages: ImportedMessage[]): Promise<void>
  /**
   * Gives the imported session to `ownerId`, its active path ending at `currentId`; `duplicate`
   * (and the session removed) when the same conversation was imported meanwhile.
   */
  finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'>
  /** Removes an import that failed half-way. */
  discardImport(sessionId: string): Promise<void>
  /**
   * At start-up: removes the sessions of imports a previous run did not finish (on PostgreSQL,
   * this instance's; lib/store/postgres/cluster.ts removes a dead instance's).
   */
  dropUnfinishedImports(): Promise<number>
}
