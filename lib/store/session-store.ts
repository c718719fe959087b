import type { ContextCut, Folder, SessionFilter, NewSession, Page, Session, SessionChange, SessionCursor, SessionDeletion, SessionOrder, SessionSettings } from './chat-store.ts'

/** Sessions: made, renamed, listed, removed; what is kept with one (its owner, metadata, the context cut). */
export interface SessionStore {
  /** The session (with its system prompt) when it exists and belongs to `ownerId`; someone else's is as absent as a missing one. */
  getSession(id: string, ownerId: string): Promise<Session | undefined>
  /** A new session (a random id, the default title and the local user unless given), with its system prompt and settings. */
  createSession(session?: NewSession): Promise<Session>
  /**
   * Renames the session, changes its settings, and sets or removes its system prompt (its system
   * message: changed in place, or added before its first message, or removed with its children
   * kept), pins, archives or files it, in one transaction. Undefined for a missing session or
   * someone else's. Only a change to what it is (not where it is listed) makes it newer.
   */
  updateSession(id: string, ownerId: string, change: SessionChange): Promise<Session | undefined>
  /** Removes the session and its messages; `busy` (nothing removed) while one of its replies is streaming. */
  deleteSession(id: string, ownerId: string): Promise<SessionDeletion>
  /** Who owns the session, when it exists (for refusing someone else's id before anything else). */
  sessionOwner(id: string): Promise<string | undefined>
  /** Who owns the session and what its turns use unless they send their own, when it exists: one read at a chat's start. */
  sessionOwnerAndSettings(id: string): Promise<{ ownerId: string; settings: SessionSettings } | undefined>
  /** The Ollama host the session's last finished reply ran on, if any. */
  sessionHost(id: string): Promise<string | null>
  /** A page of the owner's sessions in `order`, only those `filter` lets through (all when absent). */
  listSessions(ownerId: string, limit: number, after: SessionCursor | null, order?: SessionOrder, filter?: SessionFilter): Promise<Page<Session, SessionCursor>>
  /** The owner's folders by name, each with how many of their chats that are not archived it holds. */
  listFolders(ownerId: string): Promise<Folder[]>
  sessionMetadata(id: string): Promise<Record<string, string>>
  setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void>
  /** The session's cut, for its owner's view of it. */
  contextCut(sessionId: string): Promise<ContextCut | null>
  /** Keeps a new cut (and summary) with the session. */
  setContextCut(sessionId: string, cut: ContextCut): Promise<void>
}
