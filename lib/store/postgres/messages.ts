import type { Sql } from 'postgres'
import { timestamp } from '../../shared/clock.ts'
import { type ConversationMessage, type History, toContextCut, type Message, type MessageCursor, toolHistoryOf, type Page, type Rating, type RatingChange, type Role, type UserTurn, type Branch, cutOnPath, type HistoryEntry } from '../chat-store.ts'
import type { AttachmentStore } from '../attachment-store.ts'
import type { MessageStore } from '../message-store.ts'
import { PostgresPart } from './part.ts'
import { iso, toMessage, pathTo, queueUserMessage, insertMessages } from './rows.ts'

export class PostgresMessages extends PostgresPart implements MessageStore {
  private readonly attachments: AttachmentStore

  constructor(sql: Sql, ready: Promise<unknown>, instanceId: string, attachments: AttachmentStore) {
    super(sql, ready, instanceId)
    this.attachments = attachments
  }


  async listMessages(sessionId: string, limit: number, after: MessageCursor | null, order: 'asc' | 'desc' = 'asc', branch: Branch = 'active'): Promise<Page<Message, MessageCursor>> {
    const sql = await this.db()
    const columns = sql`seq, id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms, prompt_tokens, tokens_per_second, sources, rating, done_reason`
    // The active path is a CTE of the same shape as the table, read in its place.
    const messages = branch === 'active'
      ? sql`(WITH RECURSIVE ${pathTo(sql, sessionId)} SELECT m.* FROM path JOIN messages m ON m.id = path.id) AS messages`
      : sql`messages`
    const rows = order === 'asc'
      ? after
        ? await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} AND (created_at, seq) > (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at, seq LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} ORDER BY created_at, seq LIMIT ${limit + 1}`
      : after
        ? await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} AND (created_at, seq) < (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at DESC, seq DESC LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} ORDER BY created_at DESC, seq DESC LIMIT ${limit + 1}`
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const items = page.map(toMessage)
    const images = await this.attachments.imagesOf(items.map((message) => message.id))
    for (const message of items) message.images = images.get(message.id) ?? []
    return { items, next: rows.length > limit && last ? [iso(last.created_at)!, Number(last.seq)] : null }
  }


  async childrenOf(sessionId: string, parentIds: Array<string | null>): Promise<Map<string | null, string[]>> {
    const rows = await (await this.db())`
      SELECT id, parent_id FROM messages
      WHERE session_id = ${sessionId} AND (parent_id = ANY(${parentIds.filter((id) => id !== null)}::text[]) OR (${parentIds.includes(null)} AND parent_id IS NULL))
      ORDER BY created_at, seq`
    const children = new Map<string | null, string[]>()
    for (const row of rows) children.set(row.parent_id, [...(children.get(row.parent_id) ?? []), row.id])
    return children
  }


  async setCurrentMessage(sessionId: string, messageId: string): Promise<{ currentMessageId: string } | 'missing' | 'busy'> {
    return (await this.db()).begin(async (tx) => {
      // Locked as a turn locks it: a reply that began on any instance is seen, and none begins meanwhile.
      await tx`SELECT 1 FROM sessions WHERE id = ${sessionId} FOR UPDATE`
      const [leaf] = await tx`
        WITH RECURSIVE down(id, depth) AS (
          SELECT id, 0 FROM messages WHERE id = ${messageId} AND session_id = ${sessionId}
          UNION ALL
          SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.created_at DESC, c.seq DESC LIMIT 1), depth + 1
          FROM down WHERE down.id IS NOT NULL)
        SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1`
      if (!leaf) return 'missing'
      const [streaming] = await tx`SELECT 1 FROM messages WHERE session_id = ${sessionId} AND status = 'streaming'`
      if (streaming) return 'busy'
      await tx`UPDATE sessions SET current_message_id = ${leaf.id} WHERE id = ${sessionId}`
      return { currentMessageId: leaf.id as string }
    })
  }


  async getMessage(id: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms, prompt_tokens, tokens_per_second, sources, rating, done_reason FROM messages WHERE id = ${id}`
    return row && toMessage(row)
  }


  async getOwnedMessage(id: string, ownerId: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`
      SELECT m.id, m.role, m.content, m.created_at, m.model, m.tokens_used, m.status, m.parent_id, m.tool_calls, m.tool_call_id, m.tool_name, m.thinking, m.thinking_ms, m.prompt_tokens, m.tokens_per_second, m.sources, m.rating, m.done_reason
      FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ${id} AND s.owner_id = ${ownerId}`
    return row && toMessage(row)
  }


  async getSessionMessage(sessionId: string, messageId: string): Promise<(Message & { seq: number }) | undefined> {
    const [row] = await (await this.db())`
      SELECT seq, id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms, prompt_tokens, tokens_per_second, sources, rating, done_reason FROM messages WHERE id = ${messageId} AND session_id = ${sessionId}`
    return row && { ...toMessage(row), seq: Number(row.seq) }
  }


  async rateReply(sessionId: string, messageId: string, rating: Rating | null): Promise<RatingChange> {
    return (await this.db()).begin(async (tx): Promise<RatingChange> => {
      const [row] = await tx`SELECT role, rating FROM messages WHERE id = ${messageId} AND session_id = ${sessionId} FOR UPDATE`
      if (!row) return 'missing'
      if (row.role !== 'assistant') return 'not_a_reply'
      await tx`UPDATE messages SET rating = ${rating} WHERE id = ${messageId}`
      return { previous: row.rating ?? null }
    })
  }


  async deleteMessage(sessionId: string, messageId: string): Promise<boolean> {
    return (await (await this.db())`DELETE FROM messages WHERE id = ${messageId} AND session_id = ${sessionId} AND status <> 'streaming'`).count > 0
  }


  async appendMessages(sessionId: string, ownerId: string, messages: ConversationMessage[]): Promise<string[]> {
    return (await this.db()).begin(async (tx) => {
      const { ids, writes } = await insertMessages(tx, sessionId, ownerId, messages, timestamp())
      await Promise.all(writes)
      return ids
    })
  }


  async addUserMessage(turn: UserTurn): Promise<{ userMessageId: string }> {
    return (await this.db()).begin(async (tx) => {
      const { userMessageId, writes } = await queueUserMessage(tx, turn, timestamp())
      await Promise.all(writes)
      return { userMessageId }
    })
  }


  async history(sessionId: string, leafId?: string | null): Promise<History> {
    const sql = await this.db()
    // One round trip: the session's cut on every row (and on the one row of a path without messages).
    const rows = await sql`
      WITH RECURSIVE ${pathTo(sql, sessionId, leafId)}
      SELECT s.context_cut_message_id, s.context_summary, m.id, m.role, m.content, m.tool_calls, m.tool_name, m.image_count
      FROM sessions s LEFT JOIN (path JOIN (
        SELECT *, (SELECT count(*) FROM attachments a WHERE a.message_id = messages.id) AS image_count FROM messages WHERE session_id = ${sessionId}
      ) m ON m.id = path.id AND (m.content <> '' OR m.image_count > 0 OR m.tool_calls IS NOT NULL OR m.role = 'tool')) ON m.session_id = s.id
      WHERE s.id = ${sessionId} ORDER BY m.created_at, m.seq`
    // A message without text is sent when it shows images or makes tool calls; a tool result always.
    const messages: HistoryEntry[] = rows.filter((row) => row.id !== null).map((row) => ({
      id: row.id as string, role: row.role as Role, content: row.content as string,
      // A tool result's images are its user's to see; the model reads the note in its text.
      ...(Number(row.image_count) && row.role !== 'tool' ? { imageCount: Number(row.image_count) } : {}), ...toolHistoryOf(row),
    }))
    return { messages, cut: cutOnPath(toContextCut(rows[0]), messages) }
  }
}
