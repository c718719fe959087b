import { randomUUID } from 'node:crypto'
import type { Sql, TransactionSql } from 'postgres'
import { type ImportedConversation, type ImportedMessage, importingOwner, type Role } from '../chat-store.ts'
import type { ImportedTree, ImportStart, TransferStore } from '../transfer-store.ts'
import { PostgresPart } from './part.ts'
import { insertMessage } from './rows.ts'

export class PostgresTransfers extends PostgresPart implements TransferStore {

  /** The user's session this conversation was imported to, or is an export of. */
  private async importedTo(sql: Sql | TransactionSql, ownerId: string, conversation: ImportedConversation): Promise<string | undefined> {
    const [known] = await sql`
      SELECT session_id FROM import_sources WHERE owner_id = ${ownerId} AND source_id = ${conversation.sourceId}
      UNION ALL SELECT id FROM sessions WHERE id = ${conversation.sameAsSession} AND owner_id = ${ownerId}
      LIMIT 1`
    return known?.session_id
  }


  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<ImportStart> {
    const sql = await this.db()
    const existingId = await this.importedTo(sql, ownerId, conversation)
    if (existingId) return { existingId }
    const sessionId = randomUUID()
    await sql`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${sessionId}, ${conversation.title}, ${conversation.createdAt}, ${conversation.createdAt}, ${importingOwner(this.instanceId)})`
    return { sessionId }
  }


  async importedTree(sessionId: string): Promise<ImportedTree> {
    const sql = await this.db()
    const [[session], messages, sources] = await Promise.all([
      sql`SELECT current_message_id, updated_at FROM sessions WHERE id = ${sessionId}`,
      sql`SELECT id, parent_id, role, content FROM messages WHERE session_id = ${sessionId}`,
      sql`SELECT source_message_id, message_id FROM imported_messages WHERE session_id = ${sessionId}`,
    ])
    return {
      currentId: session!.current_message_id ?? null,
      updatedAt: new Date(session!.updated_at).toISOString(),
      messages: messages.map((row) => ({ id: row.id, parentId: row.parent_id ?? null, role: row.role as Role, content: row.content })),
      sources: new Map(sources.map((row) => [row.source_message_id, row.message_id])),
    }
  }


  async addImportedMessages(sessionId: string, messages: ImportedMessage[], matched: Array<{ sourceId: string; messageId: string }> = []): Promise<void> {
    await (await this.db()).begin(async (tx) => {
      // In order, pipelined: each message's row before what refers to it.
      const writes = messages.flatMap((message) => [
        insertMessage(tx, { ...message, sessionId }),
        ...(message.sources?.length ? [tx`UPDATE messages SET sources = ${JSON.stringify(message.sources)}::jsonb WHERE id = ${message.id}`] : []),
        ...(message.sourceId === undefined ? [] : [tx`INSERT INTO imported_messages (message_id, session_id, source_message_id) VALUES (${message.id}, ${sessionId}, ${message.sourceId})`]),
      ])
      for (const { sourceId, messageId } of matched) writes.push(tx`INSERT INTO imported_messages (message_id, session_id, source_message_id) VALUES (${messageId}, ${sessionId}, ${sourceId})`)
      await Promise.all(writes)
    })
  }


  async finishImportUpdate(sessionId: string, currentId: string | null, updatedAt: string): Promise<void> {
    await (await this.db())`UPDATE sessions SET current_message_id = ${currentId}, updated_at = ${updatedAt} WHERE id = ${sessionId}`
  }


  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    const duplicate = async () => {
      await this.discardImport(sessionId)
      return 'duplicate' as const
    }
    try {
      return await (await this.db()).begin(async (tx) => {
        if (await this.importedTo(tx, ownerId, conversation)) return 'duplicate' as const
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
