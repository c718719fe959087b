import type { ConversationMessage, FinishedReply, Message, StoredReply, ToolStep, UserTurn } from './chat-store.ts'

/** The life of a generated reply: begun with its turn, checkpointed, given tool steps, finished, or discarded; interrupted at start-up. */
export interface ReplyStore {
  /**
   * A user's message and the assistant reply that will answer it, stored `streaming` and empty,
   * in one transaction: a generation needs no further write before its first token.
   */
  beginTurn(turn: UserTurn & { model: string }): Promise<{ userMessageId: string; reply: { id: string; createdAt: string }; newSession: boolean }>
  /**
   * Another reply after `parentId` (a regeneration), stored `streaming` and empty; it becomes the
   * session's active leaf. `leafBefore`: the active leaf it replaced, for discardReply.
   */
  beginReply(sessionId: string, parentId: string | null, model: string): Promise<{ id: string; createdAt: string; leafBefore: string | null }>
  /**
   * A response's input (OpenAI's Responses API, in a conversation) and the assistant reply that
   * will answer it, stored `streaming` and empty, in one transaction. Returns the reply's id.
   */
  addResponseTurn(sessionId: string, ownerId: string, messages: ConversationMessage[], model: string): Promise<string>
  /** A message with what Ollama reported of it (for answering a retried chat as the first was answered). */
  getReply(id: string): Promise<StoredReply | undefined>
  /** The session's reply being generated now, on whichever instance, if any. */
  streamingReply(sessionId: string): Promise<Message | undefined>
  /**
   * Removes a reply that never started (Ollama refused before its first token). The session's
   * active leaf becomes `leafAfter` when given (a regeneration's leaf before it), else the
   * reply's parent.
   */
  discardReply(id: string, leafAfter?: string | null): Promise<void>
  /**
   * Stores a step of a turn with tools before the streaming reply `replyId`: its messages go
   * between the reply and its parent, the reply after them, its text starting anew (the step's
   * text is the calling message's). The reply stays the active leaf. Its new `created_at`, or null
   * (nothing written) when no streaming reply has that id.
   */
  addToolStep(replyId: string, step: ToolStep): Promise<string | null>
  /** Saves a streaming reply's text (and reasoning, null: none) so far; false when no streaming reply has that id. */
  checkpointReply(id: string, content: string, thinking?: string | null): Promise<boolean>
  /** Finalises a streaming reply; false (and nothing written) when no streaming reply has that id. */
  finishReply(id: string, reply: FinishedReply): Promise<boolean>
  /**
   * At start-up: the replies a previous run left `streaming` become `interrupted`, with their last
   * checkpointed text. SQLite: every one (one server per file); PostgreSQL: this instance's only.
   */
  interruptStreamingReplies(): Promise<number>
}
