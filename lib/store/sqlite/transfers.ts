import { randomUUID } from 'node:crypto'
import { importingOwner, type ImportedConversation, type ImportedMessage } from '../chat-store.ts'
import type { TransferStore } from '../transfer-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteTransfers extends SqliteRole implements TransferStore {
  readonly statements = this.prepare({
    importedFrom: 'SELECT 1 FROM import_sources WHERE owner_id = ? AND source_id = ?',
    recordImport: 'INSERT INTO import_sources (owner_id, source_id, session_id) VALUES (?, ?, ?)',
    finishImport: 'UPDATE sessions SET owner_id = ?, current_message_id = ?, updated_at = ? WHERE id = ?',
    dropImports: 'DELETE FROM sessions WHERE owner_id = ?',
    setThinking: 'UPDATE messages SET thinking = ?, thinking_ms = ? WHERE id = ?',
  })

  private isImported(ownerId: string, conversation: ImportedConversation): boolean {
    const { sameAsSession } = conversation
    return Boolean(this.statements.importedFrom.get(ownerId, conversation.sourceId) || (sameAsSession && this.database.statements.getSession.get(sameAsSession, ownerId)))
  }

  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<string | 'duplicate'> {
    if (this.isImported(ownerId, conversation)) return 'duplicate'
    const sessionId = randomUUID()
    this.database.statements.insertSession.run(sessionId, conversation.title, conversation.createdAt, conversation.createdAt, importingOwner(null), '{}')
    return sessionId
  }

  async addImportedMessages(sessionId: string, messages: ImportedMessage[]): Promise<void> {
    this.database.transaction(() => {
      for (const message of messages) {
        if (message.toolCalls || message.callId) {
          const { id, role, content, model, status, createdAt, parentId, toolCalls, callId, toolName } = message
          this.database.statements.insertToolMessage.run(id, sessionId, role, content, model, status, createdAt, parentId, toolCalls ? JSON.stringify(toolCalls) : null, callId ?? null, toolName ?? null, null)
        } else {
          this.database.insert(message.id, sessionId, message.role, message.content, message.model, message.status, message.createdAt, { parentId: message.parentId }, message.images)
        }
        if (message.thinking) this.statements.setThinking.run(message.thinking, message.thinkingMs ?? null, message.id)
      }
    })
  }

  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    return this.database.transaction(() => {
      if (this.isImported(ownerId, conversation)) {
        this.database.statements.deleteSession.run(sessionId, importingOwner(null))
        return 'duplicate'
      }
      this.statements.finishImport.run(ownerId, currentId, conversation.updatedAt, sessionId)
      this.statements.recordImport.run(ownerId, conversation.sourceId, sessionId)
      return 'imported'
    })
  }

  async discardImport(sessionId: string): Promise<void> {
    this.database.statements.deleteSession.run(sessionId, importingOwner(null))
  }

  async dropUnfinishedImports(): Promise<number> {
    return Number(this.statements.dropImports.run(importingOwner(null)).changes)
  }
}
