import type { Logger } from '../observability/log.ts'
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
  /**
   * Makes this server the one server on the database until `release`, or throws an Error whose
   * message is one line: start-up marks every unfinished reply interrupted, which is only right
   * when no other server runs them.
   */
  claimServer(log: Logger): Promise<{ release(): Promise<void> }>
  close(): Promise<void>
}
