/** A message as a share link shows it: who said it, what, when, and the model of a reply. */
export interface SharedMessage {
  role: 'user' | 'assistant'
  content: string
  created_at: string
  model?: string
}

/** A share link as its owner sees it (never its token, which only its creation answers). */
export interface Share {
  id: string
  session_id: string
  title: string
  message_count: number
  created_at: string
}

/** What a share link shows: the chat's title and messages when it was made. */
export interface SharedChat {
  title: string
  created_at: string
  messages: SharedMessage[]
}

/** Share links (docs/api.md "Sharing a chat"): each its owner's; the token is kept only as its hash. */
export interface ShareStore {
  createShare(share: { ownerId: string; sessionId: string; tokenHash: string; title: string; messages: SharedMessage[] }): Promise<Share>
  /** The owner's links, newest first; only those of one session when it is given. */
  listShares(ownerId: string, sessionId?: string): Promise<Share[]>
  /** Revokes a link: false when the owner has no such link. */
  deleteShare(id: string, ownerId: string): Promise<boolean>
  /** The snapshot a token's hash opens, while the link exists. */
  sharedChat(tokenHash: string): Promise<SharedChat | undefined>
}
