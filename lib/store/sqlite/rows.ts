import type { SQLInputValue } from 'node:sqlite'
import { organisedFieldsOf, reasoningFieldsOf, replyFiguresOf, settingsFieldsOf, sourcesFieldsOf, toolFieldsOf, type Message, type MessageStatus, type Role, type Session } from '../chat-store.ts'

/** A row as node:sqlite returns it. */
export type Row = Record<string, SQLInputValue>

export const SESSION_COLUMNS = 'id, title, created_at, updated_at, message_count, current_message_id, settings, pinned, archived, folder'

export const messageColumnsOf = (table: string) =>
  ['rowid AS seq', 'id', 'role', 'content', 'created_at', 'model', 'tokens_used', 'status', 'parent_id', 'tool_calls', 'tool_call_id', 'tool_name', 'thinking', 'thinking_ms', 'prompt_tokens', 'tokens_per_second', 'sources', 'rating', 'done_reason'].map((column) => `${table}.${column}`).join(', ')

export const MESSAGE_COLUMNS = messageColumnsOf('messages')

/**
 * The path that ends at a leaf: the session's active leaf (?1), or the one given (?3 when ?2 is
 * true; NULL: an empty path), followed up through the parents. UNION: a cycle could only repeat.
 */
export const PATH_CTE = `path(id) AS (
    SELECT CASE WHEN ?2 THEN ?3 ELSE current_message_id END FROM sessions WHERE id = ?1
    UNION
    SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id)`

export function toSession(row: Row): Session {
  return {
    id: String(row.id),
    title: String(row.title),
    created_at: String(row.created_at),
    updated_at: String(row.updated_at),
    message_count: Number(row.message_count),
    current_message_id: row.current_message_id == null ? null : String(row.current_message_id),
    ...settingsFieldsOf(row.settings),
    ...organisedFieldsOf(row),
    ...('system' in row ? { system: row.system == null ? null : String(row.system) } : {}),
  }
}

export function toMessage(row: Row): Message {
  return {
    id: String(row.id),
    role: row.role as Role,
    content: String(row.content),
    created_at: String(row.created_at),
    ...(row.model == null ? {} : { model: String(row.model) }),
    ...(row.tokens_used == null ? {} : { tokens_used: Number(row.tokens_used) }),
    status: row.status as MessageStatus,
    parent_id: row.parent_id == null ? null : String(row.parent_id),
    ...toolFieldsOf(row),
    ...reasoningFieldsOf(row),
    ...replyFiguresOf(row),
    ...sourcesFieldsOf(row),
  }
}
