import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import type { Share, SharedChat, SharedMessage, ShareStore } from '../share-store.ts'
import { PostgresPart } from './part.ts'
import { iso, type Row } from './rows.ts'

const toShare = (row: Row): Share =>
  ({ id: row.id, session_id: row.session_id, title: row.title, message_count: Number(row.message_count), created_at: iso(row.created_at)! })

export class PostgresShares extends PostgresPart implements ShareStore {
  async createShare({ ownerId, sessionId, tokenHash, title, messages }: { ownerId: string; sessionId: string; tokenHash: string; title: string; messages: SharedMessage[] }): Promise<Share> {
    const sql = await this.db()
    const share: Share = { id: randomUUID(), session_id: sessionId, title, message_count: messages.length, created_at: timestamp() }
    await sql`INSERT INTO shares (id, token_hash, owner_id, session_id, title, snapshot, message_count, created_at)
      VALUES (${share.id}, ${tokenHash}, ${ownerId}, ${sessionId}, ${title}, ${sql.json(messages as never)}, ${messages.length}, ${share.created_at})`
    return share
  }

  async listShares(ownerId: string, sessionId?: string): Promise<Share[]> {
    const sql = await this.db()
    const rows = await sql`SELECT id, session_id, title, message_count, created_at FROM shares
      WHERE owner_id = ${ownerId} ${sessionId === undefined ? sql`` : sql`AND session_id = ${sessionId}`} ORDER BY created_at DESC, id DESC`
    return rows.map(toShare)
  }

  async deleteShare(id: string, ownerId: string): Promise<boolean> {
    return (await (await this.db())`DELETE FROM shares WHERE id = ${id} AND owner_id = ${ownerId}`).count > 0
  }

  async sharedChat(tokenHash: string): Promise<SharedChat | undefined> {
    const [row] = await (await this.db())`SELECT title, snapshot, created_at FROM shares WHERE token_hash = ${tokenHash}`
    return row && { title: row.title, created_at: iso(row.created_at)!, messages: row.snapshot as SharedMessage[] }
  }
}
