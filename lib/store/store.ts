import type { Cluster, ClusterMember } from './cluster.ts'
import type { AccessStore } from './access-store.ts'
import type { ApprovalStore } from './approval-store.ts'
import type { AttachmentStore } from './attachment-store.ts'
import type { IdempotencyStore } from './idempotency-store.ts'
import type { MessageStore } from './message-store.ts'
import type { ReplyStore } from './reply-store.ts'
import type { SearchStore } from './search-store.ts'
import type { SessionStore } from './session-store.ts'
import type { TransferStore } from './transfer-store.ts'
import type { ResponseStore } from './response-store.ts'
import type { DocumentStore } from './document-store.ts'
import type { PromptStore } from './prompt-store.ts'
import type { ShareStore } from './share-store.ts'
import type { InputStore } from './input-store.ts'
import type { McpAuthStore } from './mcp-auth-store.ts'

/**
 * Conversations, every role of them in one object (the app context's `store`). Each role is an
 * interface of its own (lib/store/*-store.ts); a new one is added beside them.
 */
export interface ChatStore extends SessionStore, MessageStore, ReplyStore, ApprovalStore, SearchStore, TransferStore, IdempotencyStore, AttachmentStore {
  /** Throws when the database cannot answer. */
  ping(): Promise<void>
}

/** The conversation store's roles, each an object of its own: what a feature that needs one role takes. */
export interface ChatRoles {
  readonly sessions: SessionStore
  readonly messages: MessageStore
  readonly replies: ReplyStore
  readonly approvals: ApprovalStore
  readonly searchIndex: SearchStore
  readonly transfers: TransferStore
  readonly idempotency: IdempotencyStore
  readonly attachments: AttachmentStore
}

/**
 * The database the service keeps everything in, whichever backend it is: conversations, access
 * (users, keys, sign-ins, audit) and OpenAI's Responses, each behind its own interface.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres'
  /** Conversations: every role as one object, and each role apart (`chats.replies`). */
  readonly chats: ChatStore & ChatRoles
  readonly access: AccessStore
  readonly responses: ResponseStore
  /** Files, their chunks and vectors, and collections (docs/documents.md). */
  readonly documents: DocumentStore
  /** Saved prompts (docs/api.md "Saved prompts"). */
  readonly prompts: PromptStore
  /** Share links (docs/api.md "Sharing a chat"). */
  readonly shares: ShareStore
  /** Input tools ask their users for mid-call (docs/tools.md "Input for a tool"). */
  readonly inputs: InputStore
  /** OAuth sign-ins to MCP servers, sealed (docs/tools.md "Servers that sign in with OAuth"). */
  readonly mcpAuth: McpAuthStore
  /** What several instances on the database share (PostgreSQL); null where one server has it alone (SQLite). */
  readonly cluster: Cluster | null
  /** Throws when the database cannot answer. */
  ping(): Promise<void>
  /**
   * Starts serving on the database until `release`, before start-up closes what a previous run
   * left unfinished. SQLite: this server becomes the one server on the file, or it throws an Error
   * whose message is one line. PostgreSQL: this instance joins the others (Cluster.join).
   */
  join(member: ClusterMember): Promise<{ release(): Promise<void> }>
  close(): Promise<void>
}
