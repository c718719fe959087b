import type { ContextCut, NewSession, Page, Session, SessionCursor, SessionDeletion, SessionOrder } from './chat-store.ts'

/** Sessions: made, renamed, listed, removed; what is kept with one (its owner, metadata, the context cut). */
export interface SessionStore {
  /** The session when it exists and belongs to `ownerId`; someone else's is as absent as a missing one. */
  getSession(id: string, ownerId: string): Promise<Session | undefined>
  /** A new session (a random id, the default title and the local user unless given), with its system prompt. */
  createSession(session?: NewSession): Promise<Session>
  renameSession(id: string, ownerId: string, title: string): Promise<Session | undefined>
  /** Removes the session and its messages; `busy` (nothing removed) while one of its replies is streaming. */
  deleteSession(id: string, ownerId: string): Promise<SessionDeletion>
  /** Who owns the session, when it exists (for refusing someone else's id before anything else). */
  sessionOwner(id: string): Promise<string | undefined>
  /** The Ollama host the session's last finished reply ran on, if any. */
  sessionHost(id: string): Promise<string | null>
  listSessions(ownerId: string, limit: number, after: SessionCursor | null, order?: SessionOrder): Promise<Page<Session, SessionCursor>>
  sessionMetadata(id: string): Promise<Record<string, string>>
  setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void>
  /** The session's cut, for its owner's view of it. */
  contextCut(sessionId: string): Promise<ContextCut | null>
  /** Keeps a new cut (and summary) with the session. */
  setContextCut(sessionId: string, cut: ContextCut): Promise<void>
}
