import type { StatementSync } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import { cutOnPath, toolHistoryOf, type Branch, type ConversationMessage, type History, type HistoryEntry, type Message, type MessageCursor, type Page, type Rating, type RatingChange, type Role, type UserTurn } from '../chat-store.ts'
import type { MessageStore } from '../message-store.ts'
import type { SqliteAttachments } from './attachments.ts'
import { SqliteRole, type SqliteDatabase } from './database.ts'
import { MESSAGE_COLUMNS, messageColumnsOf, PATH_CTE, toMessage } from './rows.ts'
import type { SqliteSessions } from './sessions.ts'

export class SqliteMessages extends SqliteRole implements MessageStore {
  private readonly sessions: SqliteSessions
  private readonly attachments: SqliteAttachments
  private readonly pathPages = new Map<string, StatementSync>()
  readonly statements = this.prepare({
    getMessage: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`,
    getSessionMessage: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ? AND session_id = ?`,
    getOwnedMessage: `SELECT ${messageColumnsOf('m')}
       FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ? AND s.owner_id = ?`,
    ratingOf: 'SELECT role, rating FROM messages WHERE id = ? AND session_id = ?',
    setRating: 'UPDATE messages SET rating = ? WHERE id = ?',
    deleteMessage: `DELETE FROM messages WHERE id = ? AND session_id = ? AND status != 'streaming'`,
    listMessagesFirst: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY created_at, rowid LIMIT ?`,
    listMessagesAfter: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND (created_at, rowid) > (?, ?)
       ORDER BY created_at, rowid LIMIT ?`,
    listMessagesLast: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    listMessagesBefore: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND (created_at, rowid) < (?, ?)
       ORDER BY created_at DESC, rowid DESC LIMIT ?`,
    // A message without text is sent when it shows images or makes tool calls; a tool result always.
    history: `WITH RECURSIVE ${PATH_CTE}
       SELECT m.id, m.role, m.content, m.tool_calls, m.tool_name, (SELECT count(*) FROM attachments a WHERE a.message_id = m.id) AS image_count
       FROM path JOIN messages m ON m.id = path.id
       WHERE m.session_id = ?1 AND (m.content != '' OR image_count > 0 OR m.tool_calls IS NOT NULL OR m.role = 'tool') ORDER BY m.created_at, m.rowid`,
    childrenOf: `SELECT id, parent_id FROM messages
       WHERE session_id = ?1 AND (parent_id IN (SELECT value FROM json_each(?2)) OR (?3 AND parent_id IS NULL))
       ORDER BY created_at, rowid`,
    // The newest child at each step down from ?2; its last step is the leaf.
    leafBelow: `WITH RECURSIVE down(id, depth) AS (
         SELECT id, 0 FROM messages WHERE id = ?2 AND session_id = ?1
         UNION ALL
         SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.created_at DESC, c.rowid DESC LIMIT 1), depth + 1
         FROM down WHERE down.id IS NOT NULL)
       SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1`,
  })

  constructor(database: SqliteDatabase, sessions: SqliteSessions, attachments: SqliteAttachments) {
    super(database)
    this.sessions = sessions
    this.attachments = attachments
  }

  async listMessages(sessionId: string, limit: number, after: MessageCursor | null, order: 'asc' | 'desc' = 'asc', branch: Branch = 'active'): Promise<Page<Message, MessageCursor>> {
    const rows = branch === 'active'
      ? this.activePathPage(order, after !== null).all(sessionId, 0, null, ...(after ?? []), limit + 1)
      : order === 'asc'
        ? after ? this.statements.listMessagesAfter.all(sessionId, after[0], after[1], limit + 1) : this.statements.listMessagesFirst.all(sessionId, limit + 1)
        : after ? this.statements.listMessagesBefore.all(sessionId, after[0], after[1], limit + 1) : this.statements.listMessagesLast.all(sessionId, limit + 1)
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const items = page.map(toMessage)
    const images = await this.attachments.imagesOf(items.map((message) => message.id))
    for (const message of items) message.images = images.get(message.id) ?? []
    return { items, next: rows.length > limit && last ? [String(last.created_at), Number(last.seq)] : null }
  }

  /** A page of the active path (parameters: the path's three, then the cursor if any, then the limit). */
  private activePathPage(order: 'asc' | 'desc', withCursor: boolean): StatementSync {
    const key = `${order}:${withCursor}`
    let statement = this.pathPages.get(key)
    if (!statement) {
      const direction = order === 'asc' ? '' : ' DESC'
      const cursor = withCursor ? `AND (m.created_at, m.rowid) ${order === 'asc' ? '>' : '<'} (?4, ?5)` : ''
      statement = this.database.db.prepare(
        `WITH RECURSIVE ${PATH_CTE}
         SELECT ${messageColumnsOf('m')} FROM path JOIN messages m ON m.id = path.id
         WHERE m.session_id = ?1 ${cursor} ORDER BY m.created_at${direction}, m.rowid${direction} LIMIT ?${withCursor ? 6 : 4}`,
      )
      this.pathPages.set(key, statement)
    }
    return statement
  }

  async childrenOf(sessionId: string, parentIds: Array<string | null>): Promise<Map<string | null, string[]>> {
    const children = new Map<string | null, string[]>()
    const rows = this.statements.childrenOf.all(sessionId, JSON.stringify(parentIds.filter((id) => id !== null)), parentIds.includes(null) ? 1 : 0)
    for (const row of rows) {
      const parent = row.parent_id == null ? null : String(row.parent_id)
      children.set(parent, [...(children.get(parent) ?? []), String(row.id)])
    }
    return children
  }

  async setCurrentMessage(sessionId: string, messageId: string): Promise<{ currentMessageId: string } | 'missing' | 'busy'> {
    return this.database.transaction(() => {
      const leaf = this.statements.leafBelow.get(sessionId, messageId)
      if (!leaf) return 'missing'
      if (this.database.statements.getStreamingReply.get(sessionId)) return 'busy'
      this.database.statements.setCurrent.run(String(leaf.id), sessionId)
      return { currentMessageId: String(leaf.id) }
    })
  }

  async getMessage(id: string): Promise<Message | undefined> {
    const row = this.statements.getMessage.get(id)
    return row && toMessage(row)
  }

  async getOwnedMessage(id: string, ownerId: string): Promise<Message | undefined> {
    const row = this.statements.getOwnedMessage.get(id, ownerId)
    return row && toMessage(row)
  }

  async getSessionMessage(sessionId: string, messageId: string): Promise<(Message & { seq: number }) | undefined> {
    const row = this.statements.getSessionMessage.get(messageId, sessionId)
    return row && { ...toMessage(row), seq: Number(row.seq) }
  }

  async rateReply(sessionId: string, messageId: string, rating: Rating | null): Promise<RatingChange> {
    return this.database.transaction(() => {
      const row = this.statements.ratingOf.get(messageId, sessionId)
      if (!row) return 'missing'
      if (row.role !== 'assistant') return 'not_a_reply'
      this.statements.setRating.run(rating, messageId)
      return { previous: (row.rating ?? null) as Rating | null }
    })
  }

  async deleteMessage(sessionId: string, messageId: string): Promise<boolean> {
    return Number(this.statements.deleteMessage.run(messageId, sessionId).changes) > 0
  }

  async appendMessages(sessionId: string, ownerId: string, messages: ConversationMessage[]): Promise<string[]> {
    return this.database.transaction(() => this.database.insertMessages(sessionId, ownerId, messages, timestamp()))
  }

  async addUserMessage(turn: UserTurn): Promise<{ userMessageId: string }> {
    return this.database.transaction(() => this.database.insertUserMessage(turn, timestamp()))
  }

  async history(sessionId: string, leafId?: string | null): Promise<History> {
    const rows = this.statements.history.all(sessionId, leafId === undefined ? 0 : 1, leafId ?? null)
    const messages: HistoryEntry[] = rows.map((row) => ({
      id: String(row.id), role: row.role as Role, content: String(row.content),
      // A tool result's images are its user's to see; the model reads the note in its text.
      ...(Number(row.image_count) && row.role !== 'tool' ? { imageCount: Number(row.image_count) } : {}), ...toolHistoryOf(row),
    }))
    return { messages, cut: cutOnPath(await this.sessions.contextCut(sessionId), messages) }
  }
}
