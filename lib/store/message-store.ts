import type { Rating, RatingChange, Branch, ConversationMessage, History, Message, MessageCursor, Page, UserTurn } from './chat-store.ts'

/** Messages and their tree (docs/api.md "Branches"): listed, read, added, removed, the active path and the history a model is sent. */
export interface MessageStore {
  /**
   * A session's messages (its active path unless `branch` is `all`), oldest first (or newest
   * first, OpenAI's default for conversation items), a page at a time.
   */
  listMessages(sessionId: string, limit: number, after: MessageCursor | null, order?: 'asc' | 'desc', branch?: Branch): Promise<Page<Message, MessageCursor>>
  /** The ids of the children of each of `parentIds` (null: the first messages), oldest first. */
  childrenOf(sessionId: string, parentIds: Array<string | null>): Promise<Map<string | null, string[]>>
  /**
   * Makes the path through `messageId`, continued by the newest child at each step, the active
   * one; the new active leaf. `busy` (nothing changed) while a reply streams.
   */
  setCurrentMessage(sessionId: string, messageId: string): Promise<{ currentMessageId: string } | 'missing' | 'busy'>
  getMessage(id: string): Promise<Message | undefined>
  /** A message of any of `ownerId`'s sessions; someone else's is as absent as a missing one. */
  getOwnedMessage(id: string, ownerId: string): Promise<Message | undefined>
  /** A message of the session, for a conversation's item routes. */
  getSessionMessage(sessionId: string, messageId: string): Promise<(Message & { seq: number }) | undefined>
  /** Sets (or with null removes) the rating of a reply of the session. */
  rateReply(sessionId: string, messageId: string, rating: Rating | null): Promise<RatingChange>
  /** Removes a message that is not being generated; false when the session has no such message. */
  deleteMessage(sessionId: string, messageId: string): Promise<boolean>
  /** Appends messages (OpenAI conversation items) to a session, in one transaction; their ids in order. */
  appendMessages(sessionId: string, ownerId: string, messages: ConversationMessage[]): Promise<string[]>
  /**
   * Stores a user's message in one transaction: the session (created, with the client's id when it
   * gave one), the system prompt when the session has none, the message, and the title taken from
   * the first user message of a session still called `New Chat`.
   */
  addUserMessage(turn: UserTurn): Promise<{ userMessageId: string }>
  /**
   * The messages Ollama may be sent: those with content on the path that ends at `leafId` (by
   * default the active leaf; null: none), oldest first, and the session's cut when it is on it.
   */
  history(sessionId: string, leafId?: string | null): Promise<History>
}
