import { randomUUID } from 'node:crypto'
import type { Sql, TransactionSql } from 'postgres'
import { type ImportedConversation, type ImportedMessage, importingOwner } from '../chat-store.ts'
import type { TransferStore } from '../transfer-store.ts'
import { PostgresPart } from './part.ts'
import { insertMessage } from './rows.ts'

export class PostgresTransfers extends PostgresPart implements TransferStore {

  private async isImported(sql: Sql | TransactionSql, ownerId: string, conversation: ImportedConversation): Promise<boolean> {
    const [known] = await sql`
      SELECT 1 FROM import_sources WHERE owner_id = ${ownerId} AND source_id = ${conversation.sourceId}
      UNION ALL SELECT 1 FROM sessions WHERE id = ${conversation.sameAsSession} AND owner_id = ${ownerId}`
    return known !== undefined
  }


  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<string | 'duplicate'> {
    const sql = await this.db()
    if (await this.isImported(sql, ownerId, conversation)) return 'duplicate'
    const sessionId = randomUUID()
    await sql`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${sessionId}, ${conversation.title}, ${conversation.createdAt}, ${conversation.createdAt}, ${importingOwner(this.instanceId)})`
    return sessionId
  }


  async addImportedMessages(sessionId: string, messages: ImportedMessage[]): Promise<void> {
    await (await this.db()).begin(async (tx) => {
      await Promise.all(messages.map((message) => insertMessage(tx, { ...message, sessionId })))
    })
  }


  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    const duplicate = async () => {
      await this.discardImport(sessionId)
      return 'duplicate' as const
    }
    try {
      return await (await this.db()).begin(async (tx) => {
        if (await this.isImported(tx, ownerId, conversation)) return 'duplicate' as const
        await tx`UPDATE sessions SET owner_id = ${ownerId}, current_message_id = ${currentId}, updated_at = ${conversation.updatedAt} WHERE id = ${sessionId}`
        // The same file imported at the same moment by another request: one of them gets the row.
        await tx`INSERT INTO import_sources (owner_id, source_id, session_id) VALUES (${ownerId}, ${conversation.sourceId}, ${sessionId})`
        return 'imported' as const
      }).then((outcome) => (outcome === 'duplicate' ? duplicate() : outcome))
    } catch (error) {
      if ((error as { constraint_name?: string }).constraint_name === 'import_sources_pkey') return duplicate()
      throw error
    }
  }


  async discardImport(sessionId: string): Promise<void> {
    await (await this.db())`DELETE FROM sessions WHERE id = ${sessionId} AND owner_id = ${importingOwner(this.instanceId)}`
  }


  async dropUnfinishedImports(): Promise<number> {
    return (await (await this.db())`DELETE FROM sessions WHERE owner_id = ${importingOwner(this.instanceId)}`).count
  }
}
