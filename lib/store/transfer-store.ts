import type { ImportedConversation, ImportedMessage, Role } from './chat-store.ts'

/** How a conversation's import begins: a new hidden session, or the user's session it was imported to before. */
export type ImportStart = { sessionId: string } | { existingId: string }

/** A session a conversation was imported to before, as bringing it up to date needs it. */
export interface ImportedTree {
  currentId: string | null
  updatedAt: string
  /** Every message of the session (any order). */
  messages: Array<{ id: string; parentId: string | null; role: Role; content: string }>
  /** The file's message id of each message an import stored, to its id here. */
  sources: Map<string, string>
}

/** Imports of whole conversations (docs/api.md "Export and import"), stored in chunks and shown only once whole. */
export interface TransferStore {
  /**
   * Starts storing an imported conversation (its messages follow in chunks, each a short
   * transaction): a new session that nobody sees until finishImport; or, when `ownerId` has this
   * conversation already (imported before, or the session it is an export of), that session's id.
   */
  beginImport(ownerId: string, conversation: ImportedConversation): Promise<ImportStart>
  /** The session an earlier import stored (begun as `existingId`), to bring it up to date. */
  importedTree(sessionId: string): Promise<ImportedTree>
  /**
   * A chunk of an import's messages, parents before children, their ids and parents this
   * server's, each recorded as its `sourceId`; `matched` records messages already here as theirs.
   */
  addImportedMessages(sessionId: string, messages: ImportedMessage[], matched?: Array<{ sourceId: string; messageId: string }>): Promise<void>
  /** Ends an update of an earlier import: the active path's end and the session's time, as they should now be. */
  finishImportUpdate(sessionId: string, currentId: string | null, updatedAt: string): Promise<void>
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
