import { randomUUID } from 'node:crypto'
import { importingOwner, type ImportedConversation, type ImportedMessage, type Role } from '../chat-store.ts'
import type { ImportedTree, ImportStart, TransferStore } from '../transfer-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteTransfers extends SqliteRole implements TransferStore {
  readonly statements = this.prepare({
    importedTo: 'SELECT session_id FROM import_sources WHERE owner_id = ? AND source_id = ?',
    recordImport: 'INSERT INTO import_sources (owner_id, source_id, session_id) VALUES (?, ?, ?)',
    finishImport: 'UPDATE sessions SET owner_id = ?, current_message_id = ?, updated_at = ? WHERE id = ?',
    finishUpdate: 'UPDATE sessions SET current_message_id = ?, updated_at = ? WHERE id = ?',
    dropImports: 'DELETE FROM sessions WHERE owner_id = ?',
    setThinking: 'UPDATE messages SET thinking = ?, thinking_ms = ? WHERE id = ?',
    setSources: 'UPDATE messages SET sources = ? WHERE id = ?',
    recordSource: 'INSERT INTO imported_messages (message_id, session_id, source_message_id) VALUES (?, ?, ?)',
    treeSession: 'SELECT current_message_id, updated_at FROM sessions WHERE id = ?',
    treeMessages: 'SELECT id, parent_id, role, content FROM messages WHERE session_id = ?',
    treeSources: 'SELECT source_message_id, message_id FROM imported_messages WHERE session_id = ?',
  })

  /** The user's session this conversation was imported to, or is an export of. */
  private importedTo(ownerId: string, conversation: ImportedConversation): string | undefined {
    const recorded = this.statements.importedTo.get(ownerId, conversation.sourceId)
    if (recorded) return String(recorded.session_id)
    const { sameAsSession } = conversation
    return sameAsSession && this.database.statements.getSession.get(sameAsSession, ownerId) ? sameAsSession : undefined
  }

  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<ImportStart> {
    const existingId = this.importedTo(ownerId, conversation)
    if (existingId) return { existingId }
    const sessionId = randomUUID()
    this.database.statements.insertSession.run(sessionId, conversation.title, conversation.createdAt, conversation.createdAt, importingOwner(null), '{}')
    return { sessionId }
  }

  async importedTree(sessionId: string): Promise<ImportedTree> {
    const session = this.statements.treeSession.get(sessionId)!
    return {
      currentId: session.current_message_id == null ? null : String(session.current_message_id),
      updatedAt: String(session.updated_at),
      messages: this.statements.treeMessages.all(sessionId).map((row) => ({ id: String(row.id), parentId: row.parent_id == null ? null : String(row.parent_id), role: row.role as Role, content: String(row.content) })),
      sources: new Map(this.statements.treeSources.all(sessionId).map((row) => [String(row.source_message_id), String(row.message_id)])),
    }
  }

  async addImportedMessages(sessionId: string, messages: ImportedMessage[], matched: Array<{ sourceId: string; messageId: string }> = []): Promise<void> {
    this.database.transaction(() => {
      for (const message of messages) {
        if (message.toolCalls || message.callId) {
          const { id, role, content, model, status, createdAt, parentId, toolCalls, callId, toolName } = message
          this.database.statements.insertToolMessage.run(id, sessionId, role, content, model, status, createdAt, parentId, toolCalls ? JSON.stringify(toolCalls) : null, callId ?? null, toolName ?? null, null)
        } else {
          this.database.insert(message.id, sessionId, message.role, message.content, message.model, message.status, message.createdAt, { parentId: message.parentId }, message.images)
        }
        if (message.thinking) this.statements.setThinking.run(message.thinking, message.thinkingMs ?? null, message.id)
        if (message.sources?.length) this.statements.setSources.run(JSON.stringify(message.sources), message.id)
        if (message.sourceId !== undefined) this.statements.recordSource.run(message.id, sessionId, message.sourceId)
      }
      for (const { sourceId, messageId } of matched) this.statements.recordSource.run(messageId, sessionId, sourceId)
    })
  }

  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    return this.database.transaction(() => {
      if (this.importedTo(ownerId, conversation)) {
        this.database.statements.deleteSession.run(sessionId, importingOwner(null))
        return 'duplicate'
      }
      this.statements.finishImport.run(ownerId, currentId, conversation.updatedAt, sessionId)
      this.statements.recordImport.run(ownerId, conversation.sourceId, sessionId)
      return 'imported'
    })
  }

  async finishImportUpdate(sessionId: string, currentId: string | null, updatedAt: string): Promise<void> {
    this.statements.finishUpdate.run(currentId, updatedAt, sessionId)
  }

  async discardImport(sessionId: string): Promise<void> {
    this.database.statements.deleteSession.run(sessionId, importingOwner(null))
  }

  async dropUnfinishedImports(): Promise<number> {
    return Number(this.statements.dropImports.run(importingOwner(null)).changes)
  }
}
