import { randomUUID } from 'node:crypto'
import type { SQLInputValue } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import type { Share, SharedChat, SharedMessage, ShareStore } from '../share-store.ts'
import { SqliteRole } from './database.ts'

const COLUMNS = 'id, session_id, title, message_count, created_at'

const toShare = (row: Record<string, SQLInputValue>): Share =>
  ({ id: String(row.id), session_id: String(row.session_id), title: String(row.title), message_count: Number(row.message_count), created_at: String(row.created_at) })

export class SqliteShares extends SqliteRole implements ShareStore {
  readonly statements = this.prepare({
    insertShare: 'INSERT INTO shares (id, token_hash, owner_id, session_id, title, snapshot, message_count, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    listShares: `SELECT ${COLUMNS} FROM shares WHERE owner_id = ?1 AND (?2 IS NULL OR session_id = ?2) ORDER BY created_at DESC, id DESC`,
    deleteShare: 'DELETE FROM shares WHERE id = ? AND owner_id = ?',
    sharedChat: 'SELECT title, snapshot, created_at FROM shares WHERE token_hash = ?',
  })

  async createShare({ ownerId, sessionId, tokenHash, title, messages }: { ownerId: string; sessionId: string; tokenHash: string; title: string; messages: SharedMessage[] }): Promise<Share> {
    const share: Share = { id: randomUUID(), session_id: sessionId, title, message_count: messages.length, created_at: timestamp() }
    this.statements.insertShare.run(share.id, tokenHash, ownerId, sessionId, title, JSON.stringify(messages), messages.length, share.created_at)
    return share
  }

  async listShares(ownerId: string, sessionId?: string): Promise<Share[]> {
    return this.statements.listShares.all(ownerId, sessionId ?? null).map(toShare)
  }

  async deleteShare(id: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.deleteShare.run(id, ownerId).changes) > 0
  }

  async sharedChat(tokenHash: string): Promise<SharedChat | undefined> {
    const row = this.statements.sharedChat.get(tokenHash)
    return row && { title: String(row.title), created_at: String(row.created_at), messages: JSON.parse(String(row.snapshot)) as SharedMessage[] }
  }
}
