import type { Sql } from 'postgres'
import { adoptRoles } from '../roles.ts'
import type { ChatStore } from '../store.ts'
import { PostgresApprovals } from './approvals.ts'
import { PostgresAttachments } from './attachments.ts'
import { PostgresIdempotency } from './idempotency.ts'
import { PostgresMessages } from './messages.ts'
import { PostgresPart } from './part.ts'
import { PostgresReplies } from './replies.ts'
import { PostgresSearch } from './search.ts'
import { PostgresSessions } from './sessions.ts'
import { PostgresTransfers } from './transfers.ts'

// Its methods are its roles' (the constructor adopts them): every one of ChatStore.
export interface PostgresChatStore extends ChatStore {}

/**
 * Conversations on PostgreSQL: each role of the store (lib/store/*-store.ts) in a file of its own
 * here, each method one statement or one transaction (`sql.begin`) once `ready` (the migration)
 * has settled; and all of them as one ChatStore.
 */
export class PostgresChatStore extends PostgresPart {
  readonly sessions: PostgresSessions
  readonly messages: PostgresMessages
  readonly replies: PostgresReplies
  readonly approvals: PostgresApprovals
  readonly searchIndex: PostgresSearch
  readonly transfers: PostgresTransfers
  readonly idempotency: PostgresIdempotency
  readonly attachments: PostgresAttachments

  constructor(sql: Sql, ready: Promise<unknown>, instanceId: string) {
    super(sql, ready, instanceId)
    this.sessions = new PostgresSessions(sql, ready, instanceId)
    this.attachments = new PostgresAttachments(sql, ready, instanceId)
    this.messages = new PostgresMessages(sql, ready, instanceId, this.attachments)
    this.replies = new PostgresReplies(sql, ready, instanceId)
    this.approvals = new PostgresApprovals(sql, ready, instanceId)
    this.searchIndex = new PostgresSearch(sql, ready, instanceId)
    this.transfers = new PostgresTransfers(sql, ready, instanceId)
    this.idempotency = new PostgresIdempotency(sql, ready, instanceId)
    adoptRoles(this, this.sessions, this.messages, this.replies, this.approvals, this.searchIndex, this.transfers, this.idempotency, this.attachments)
  }

  async ping(): Promise<void> {
    await (await this.db())`SELECT 1`
  }
}
