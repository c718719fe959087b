import type { Cluster, ClusterMember } from './cluster.ts'
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
