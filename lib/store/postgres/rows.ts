import { randomUUID } from 'node:crypto'
import type { Sql, TransactionSql } from 'postgres'
import { HttpProblem, noSuchSession } from '../../shared/problem.ts'
import { DEFAULT_TITLE, titleFromMessage, type ConversationMessage, type Message, type MessageStatus, type ToolCall, toolFieldsOf, reasoningFieldsOf, replyFiguresOf, settingsFieldsOf, organisedFieldsOf, sourcesFieldsOf, type Role, type Session, type UserTurn, type NewImage } from '../chat-store.ts'

/** Times as the API writes them: RFC 3339 UTC with milliseconds (timestamptz comes back as a Date). */
export const iso = (value: Date | string | null): string | null => (value === null ? null : value instanceof Date ? value.toISOString() : new Date(value).toISOString())

/** A row as postgres.js returns it. */
export type Row = Record<string, any>

export interface NewMessage {
  id: string
  sessionId: string
  role: Role
  content: string
  model: string | null
  status: MessageStatus
  createdAt: string
  /** The instance generating a streaming reply. */
  owner?: string
  /** What it follows (null: nothing); by default the session's active leaf. */
  parentId?: string | null | undefined
  images?: NewImage[] | undefined
  /** A turn with tools (an imported one): an assistant message's calls; a tool message's call and tool. */
  toolCalls?: ToolCall[] | undefined
  callId?: string | undefined
  /** An assistant message's reasoning (an imported one), and how long it took. */
  thinking?: string | undefined
  thinkingMs?: number | undefined
  toolName?: string | undefined
}

/**
 * The CTE `path(id)`: the path that ends at `leafId` (by default the session's active leaf; null:
 * an empty path), followed up through the parents. UNION: a cycle could only repeat.
 */
export function pathTo(sql: Sql, sessionId: string, leafId?: string | null) {
  const leaf = leafId === undefined ? sql`current_message_id` : sql`${leafId}::text`
  return sql`path(id) AS (
    SELECT ${leaf} FROM sessions WHERE id = ${sessionId}
    UNION
    SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id)`
}

/**
 * Sends one message's INSERT; not awaited here, so that a turn's writes go out pipelined, in order,
 * on its connection. The insert trigger makes it the session's active leaf.
 */
export function insertMessage(tx: TransactionSql, message: NewMessage): PromiseLike<unknown> {
  const parent = message.parentId === undefined ? tx`(SELECT current_message_id FROM sessions WHERE id = ${message.sessionId})` : tx`${message.parentId}::text`
  const inserted = tx`
    INSERT INTO messages (id, session_id, role, content, model, status, created_at, owner_instance, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms)
    VALUES (${message.id}, ${message.sessionId}, ${message.role}, ${message.content}, ${message.model}, ${message.status}, ${message.createdAt}, ${message.owner ?? null}, ${parent},
      ${message.toolCalls ? JSON.stringify(message.toolCalls) : null}, ${message.callId ?? null}, ${message.toolName ?? null}, ${message.thinking || null}, ${message.thinking ? (message.thinkingMs ?? null) : null})`
  if (!message.images?.length) return inserted
  // postgres.js sends a query when its `then` is first called: the message and its images go out
  // together where the caller's Promise.all reaches them (each `then` called right here, not in
  // later microtasks as Promise.all would), so a turn's writes stay in order.
  const queries = [inserted, ...message.images.map((image, position) => tx`
    INSERT INTO attachments (id, message_id, position, media_type, width, height, size, data, created_at)
    VALUES (${image.id ?? randomUUID()}, ${message.id}, ${position}, ${image.mediaType}, ${image.width}, ${image.height}, ${image.data.byteLength},
      ${Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength)}, ${message.createdAt})`)]
  return {
    then: (resolve, reject) => Promise.all(queries.map((query) => new Promise((done, fail) => query.then(done, fail)))).then(resolve, reject),
  }
}

/**
 * A turn's transaction, its second streaming reply in a session refused with 409: the unique
 * index on streaming replies (migrations/postgres/002) holds across every instance.
 */
export async function oneReplyAtATime<T>(turn: Promise<T>): Promise<T> {
  try {
    return await turn
  } catch (error) {
    if ((error as { constraint_name?: string }).constraint_name === 'idx_messages_one_streaming') {
      throw new HttpProblem(409, 'conflict', 'A reply is already being generated in this session; cancel it or wait for it to finish.')
    }
    throw error
  }
}

export interface QueuedTurn {
  userMessageId: string
  newSession: boolean
  /** The turn's writes, sent pipelined; the caller adds its own and awaits them all. */
  writes: Array<PromiseLike<unknown>>
}

/**
 * The same rules as SQLite's: the session made when missing (named by this message), its system
 * prompt once, the title from its first user message. One round trip reads the session (its row
 * locked for the turn: two turns in one session are written one after the other) and what it
 * already has; the writes then go out together.
 */
export async function queueUserMessage(tx: TransactionSql, { sessionId, ownerId, content, system, settings, parentId, images }: UserTurn, now: string): Promise<QueuedTurn> {
  const [session] = await tx`
    SELECT title, owner_id,
      EXISTS (SELECT 1 FROM messages WHERE session_id = ${sessionId} AND role = 'user') AS has_user,
      EXISTS (SELECT 1 FROM messages WHERE session_id = ${sessionId} AND role = 'system') AS has_system
    FROM sessions WHERE id = ${sessionId} FOR UPDATE`
  if (session && session.owner_id !== ownerId) throw noSuchSession(sessionId)
  const writes: Array<PromiseLike<unknown>> = []
  if (!session) writes.push(tx`INSERT INTO sessions (id, title, created_at, updated_at, owner_id, settings) VALUES (${sessionId}, ${titleFromMessage(content)}, ${now}, ${now}, ${ownerId}, ${JSON.stringify(settings ?? {})}::jsonb)`)
  // An edit (placed after a given parent) keeps the session's beginning as it is.
  if (system && parentId === undefined && !session?.has_system) {
    writes.push(insertMessage(tx, { id: randomUUID(), sessionId, role: 'system', content: system, model: null, status: 'complete', createdAt: now }))
  }
  const userMessageId = randomUUID()
  writes.push(insertMessage(tx, { id: userMessageId, sessionId, role: 'user', content, model: null, status: 'complete', createdAt: now, parentId, images }))
  if (session && session.title === DEFAULT_TITLE && !session.has_user) writes.push(tx`UPDATE sessions SET title = ${titleFromMessage(content)} WHERE id = ${sessionId}`)
  return { userMessageId, newSession: !session, writes }
}

/** Messages appended in order; the first user message checks the owner and may name the session. */
export async function insertMessages(tx: TransactionSql, sessionId: string, ownerId: string, messages: ConversationMessage[], now: string): Promise<{ ids: string[]; writes: Array<PromiseLike<unknown>> }> {
  const ids: string[] = []
  const writes: Array<PromiseLike<unknown>> = []
  let userSeen = false
  for (const { role, content, images } of messages) {
    if (role === 'user' && !userSeen) {
      userSeen = true
      const queued = await queueUserMessage(tx, { sessionId, ownerId, content, images }, now)
      ids.push(queued.userMessageId)
      writes.push(...queued.writes)
      continue
    }
    const id = randomUUID()
    writes.push(insertMessage(tx, { id, sessionId, role, content, model: null, status: 'complete', createdAt: now, images }))
    ids.push(id)
  }
  return { ids, writes }
}

/** A session's columns, as a list or a read of one selects them. */
export const SESSION_COLUMNS = 'id, title, created_at, updated_at, message_count, current_message_id, settings, pinned, archived, folder'

export function toSession(row: Row): Session {
  return { id: row.id, title: row.title, created_at: iso(row.created_at)!, updated_at: iso(row.updated_at)!, message_count: Number(row.message_count), current_message_id: row.current_message_id ?? null, ...settingsFieldsOf(row.settings), ...organisedFieldsOf(row), ...('system' in row ? { system: row.system ?? null } : {}) }
}

export function toMessage(row: Row): Message {
  return {
    id: row.id,
    role: row.role as Role,
    content: row.content,
    created_at: iso(row.created_at)!,
    ...(row.model == null ? {} : { model: row.model as string }),
    ...(row.tokens_used == null ? {} : { tokens_used: Number(row.tokens_used) }),
    status: row.status as MessageStatus,
    parent_id: row.parent_id ?? null,
    ...toolFieldsOf(row),
    ...reasoningFieldsOf(row),
    ...replyFiguresOf(row),
    ...sourcesFieldsOf(row),
  }
}
