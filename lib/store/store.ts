import type { AccessStore } from './access-store.ts'
import type { ChatStore } from './chat-store.ts'
import type { ResponseStore } from './response-store.ts'

/**
 * The database the service keeps everything in, whichever backend it is: conversations, access
 * (users, keys, sign-ins, audit) and OpenAI's Responses, each behind its own interface.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres'
  readonly chats: ChatStore
  readonly access: AccessStore
  readonly responses: ResponseStore
  /** Throws when the database cannot answer. */
  ping(): Promise<void>
  close(): Promise<void>
}
