/**
 * What the service keeps of conversations: sessions and their messages. One interface, two
 * adapters: SQLite (lib/store/sqlite/, the embedded default) and PostgreSQL (lib/store/postgres/).
 * Each method is one domain operation, atomic in its adapter.
 */
import type { ChatOptions, Think } from '../shared/chat-options.ts'
export const DEFAULT_TITLE = 'New Chat'
/** The owner of everything made while AUTH is off (and of sessions older than access control). */
export const LOCAL_USER_ID = 'local'
const TITLE_MAX_CHARS = 60

export type Role = 'system' | 'user' | 'assistant' | 'tool'
/** `awaiting_approval`: a reply paused until its user approves or denies a tool call (docs/tools.md). */
export type MessageStatus = 'complete' | 'streaming' | 'cancelled' | 'error' | 'interrupted' | 'awaiting_approval'

/** A tool call the model made (docs/tools.md), as its assistant message keeps it. */
export interface ToolCall {
  call_id: string
  /** `SERVER__TOOL`. */
  name: string
  arguments: Record<string, unknown>
}

/** A tool call's result, kept as a message of role `tool` (status `error` when it failed, was denied or was not run). */
export interface ToolResult {
  callId: string
  name: string
  content: string
  ok: boolean
  /** Web pages a built-in tool gave the model (docs/builtin-tools.md), numbered among the reply's sources. */
  sources?: WebSource[]
  /** Images the result shows its user, stored with its message (each with its id already). */
  images?: NewImage[]
}

/**
 * One step of a turn with tools, stored before the reply it leads to: the model's message that
 * made the calls (absent when only results follow, as after an approval), then one message per result.
 */
export interface ToolStep {
  calls?: { content: string; thinking?: string | undefined; model: string; toolCalls: ToolCall[] } | undefined
  results: ToolResult[]
  /** Calls of `ask` tools: the reply then waits for its user's answers (status `awaiting_approval`). */
  awaiting?: AwaitedApprovals | undefined
}

/** Calls a paused reply waits on, and what resuming its turn needs. */
export interface AwaitedApprovals {
  calls: ToolCall[]
  /** The turn's state (lib/tools/tool-turn.ts), as JSON. */
  turn: string
  expiresAt: string
  /** The SSE events the reply sent before it paused (its last one included): a resumed reply's ids go on from there. */
  events: number
}

/** A call waiting for its user's approval. */
export interface PendingApproval extends ToolCall {
  reply_id: string
  expires_at: string
}

/** How a call's approval ended: approved, denied by its user, or no answer in time (counts as denied). */
export type ApprovalDecision = 'approved' | 'denied' | 'expired'

/** A reply paused for approvals, and its session. */
export interface PausedReply {
  replyId: string
  sessionId: string
}

/** A paused reply claimed for resuming: every one of its calls answered. */
export interface ClaimedReply {
  sessionId: string
  ownerId: string
  replyId: string
  createdAt: string
  model: string
  /** The events it sent before it paused. */
  events: number
  turn: string
  /** Its calls, in the order the model made them, each with its answer. */
  calls: Array<ToolCall & { decision: ApprovalDecision }>
}

/** What answering an approval came to. */
export type ApprovalAnswer = 'missing' | 'answered' | { replyId: string; remaining: number }

export interface Session {
  id: string
  title: string
  created_at: string
  updated_at: string
  message_count: number
  /** The end of the active path: what the next message follows (docs/api.md "Branches"). */
  current_message_id: string | null
  /** What its turns use unless they send their own (docs/api.md "Chat settings"). */
  model: string | null
  options: ChatOptions
  think: Think | null
  /** The files and collections its turns answer from (docs/documents.md). */
  files: string[]
  collections: string[]
  /** How its owner organised it (docs/api.md "Organising chats"). */
  pinned: boolean
  archived: boolean
  folder: string | null
  /** Its system prompt (its system message's text); read with one session, not in lists. */
  system?: string | null
}

/** Which of a user's sessions a list shows; each field absent: any. */
export interface SessionFilter {
  archived?: boolean | undefined
  pinned?: boolean | undefined
  /** A folder's name, or null: only sessions in no folder. */
  folder?: string | null | undefined
}

/** A folder of a user's, with how many of their chats (archived ones not counted) it holds. */
export interface Folder {
  name: string
  count: number
}

/** What a session keeps for its turns; absent: the server's defaults (DEFAULT_MODEL, Ollama's). */
export interface SessionSettings {
  model?: string | undefined
  options?: ChatOptions | undefined
  think?: Think | undefined
  /** Documents its turns answer from (docs/documents.md): files and collections of its owner's. */
  files?: string[] | undefined
  collections?: string[] | undefined
}

/** A change to a session (PATCH): each field given is set; `null` clears a setting or removes the system prompt. */
export interface SessionChange {
  title?: string | undefined
  model?: string | null | undefined
  options?: ChatOptions | undefined
  think?: Think | null | undefined
  system?: string | null | undefined
  /** [] clears them. */
  files?: string[] | undefined
  collections?: string[] | undefined
  /** Organising it changes where it is listed, not its last activity (updated_at). */
  pinned?: boolean | undefined
  archived?: boolean | undefined
  /** Null: out of its folder. */
  folder?: string | null | undefined
}

/** Whether a change touches what the chat is (its title, prompt or settings), not only where it is listed. */
export const changesContent = (change: SessionChange): boolean =>
  (['title', 'model', 'options', 'think', 'system', 'files', 'collections'] as const).some((field) => change[field] !== undefined)

/** A session row's organising columns (SQLite's 0/1 or PostgreSQL's booleans) as the Session's fields. */
export const organisedFieldsOf = (row: Record<string, unknown>): Pick<Session, 'pinned' | 'archived' | 'folder'> =>
  ({ pinned: Boolean(row.pinned), archived: Boolean(row.archived), folder: row.folder == null ? null : String(row.folder) })

export interface Message {
  id: string
  role: Role
  content: string
  created_at: string
  model?: string
  tokens_used?: number
  status: MessageStatus
  /** The message this one follows; null for a first message. */
  parent_id: string | null
  /** The images it shows (listMessages fills it; other reads leave it out). */
  images?: ImageInfo[]
  /** An assistant message's tool calls. */
  tool_calls?: ToolCall[]
  /** A tool message's call and tool. */
  call_id?: string
  name?: string
  /** An assistant message's reasoning (docs/api.md "Reasoning"), kept apart from its text, and how long it took. */
  thinking?: string
  thinking_ms?: number
  /** A reply's figures (docs/api.md "Sessions and messages"): tokens in and out, and its speed. */
  prompt_tokens?: number | null
  completion_tokens?: number
  tokens_per_second?: number
  /** A reply's rating by its chat's owner, when it has one. */
  rating?: Rating
  /** Why a finished reply ended, as Ollama said (`stop`, `length`: cut at its token limit). */
  done_reason?: string | null
  /** The documents' chunks a reply was given (docs/documents.md), numbered as it cites them. */
  sources?: ReplySource[]
}

/** Thumbs up or down on a reply (docs/api.md "Rating replies"). */
export type Rating = 'up' | 'down'

/** What rating a reply came to: the rating it had before, or why there was none to change. */
export type RatingChange = { previous: Rating | null } | 'missing' | 'not_a_reply'

/** One source as a reply lists it: a document's chunk, or a web page a built-in tool read. */
export type ReplySource = FileSource | WebSource

/** A web page a reply was given (web_search's results, fetch_url's page): its title, its address and its start. */
export interface WebSource {
  n: number
  url: string
  title: string
  snippet: string
}

/** A document's chunk a reply was given: the file, where in it, the start of the chunk, and its fused score (higher is better). */
export interface FileSource {
  n: number
  file_id: string
  filename: string
  page: number | null
  heading: string | null
  snippet: string
  score: number
}

/** An image to store with a message: re-encoded by lib/images/image-input.ts. */
export interface NewImage {
  /** Given when the image is listed elsewhere already (a conversation's response input); else a new one. */
  id?: string | undefined
  mediaType: string
  width: number
  height: number
  data: Uint8Array
}

/** A stored image as a message lists it (docs/images.md). */
export interface ImageInfo {
  id: string
  media_type: string
  width: number
  height: number
  /** Its size in bytes. */
  bytes: number
}

/** A stored image with its bytes. */
export interface StoredImage extends ImageInfo {
  data: Uint8Array
}

/** Which messages of a session: those of its active path, or every branch's. */
export type Branch = 'active' | 'all'

/** Where a new message goes: after `parentId` (null: as a first message), else after the active leaf. */
export interface Placement {
  parentId?: string | null | undefined
}

export interface StoredReply extends Message {
  prompt_tokens: number | null
  done_reason: string | null
  /** How many SSE events it sent, its last one included; null for one that ended otherwise (a crash). */
  event_count: number | null
}

/** A message added to a session as an OpenAI conversation item or response input. */
export interface ConversationMessage {
  role: 'user' | 'system' | 'assistant'
  content: string
  images?: NewImage[] | undefined
}

export interface UserTurn extends Placement {
  sessionId: string
  /** Who the session belongs to; a session of someone else's is answered as missing. */
  ownerId: string
  content: string
  system?: string | undefined
  /** What a session this turn makes keeps for its later turns. */
  settings?: SessionSettings | undefined
  /** Images shown with the message, stored with it. */
  images?: NewImage[] | undefined
}

export interface HistoryEntry {
  id: string
  role: Role
  content: string
  /** How many images it shows (their bytes: imagesOf), when it shows any. */
  imageCount?: number | undefined
  /** An assistant message's tool calls; a tool message's tool. */
  toolCalls?: ToolCall[] | undefined
  toolName?: string | undefined
}

/**
 * A message as a prompt is planned with it (docs/long-conversations.md): a stored one (its id)
 * or one that is not stored (null: a summary, instructions, a message not stored yet), its images
 * counted, their bytes read only for what is sent.
 */
export type PromptMessage = Omit<HistoryEntry, 'id' | 'role'> & { id: string | null; role: string }

/** Where the history a conversation sends to the model begins (docs/long-conversations.md). */
export interface ContextCut {
  /** The first message sent after the system prompt (and the summary); null: from the start. */
  messageId: string | null
  /** What the turns before it said, when CONTEXT_SUMMARY made a summary. */
  summary: string | null
}

/** A conversation as the model is sent it: every message with content, and the kept cut. */
export interface History {
  messages: HistoryEntry[]
  cut: ContextCut | null
}

/**
 * `updated`: latest activity first, for a sidebar (live, but a session updated while a client
 * pages moves ahead of its cursor and is not seen again in that walk). `created`: oldest first
 * by creation, which never changes, so a walk misses no session (for sync and export).
 */
export type SessionOrder = 'updated' | 'created'

/** Where the previous page ended; opaque to clients (see lib/http/cursor.ts). */
export type SessionCursor = [sortKey: string, id: string]
export type MessageCursor = [createdAt: string, seq: number]

export interface Page<T, C> {
  items: T[]
  next: C | null
}

export interface FinishedReply {
  content: string
  /** Its reasoning ('' or absent: none). */
  thinking?: string | undefined
  thinkingMs?: number | undefined
  /** Ollama's eval_count over its eval_duration. */
  tokensPerSecond?: number | undefined
  status: Exclude<MessageStatus, 'streaming'>
  tokensUsed?: number | undefined
  promptTokens?: number | undefined
  doneReason?: string | undefined
  /** The Ollama host that generated it: the conversation's next turn goes there first. */
  host?: string | undefined
  /** How many SSE events it sends, the last one (written after this) included. */
  events?: number | undefined
}

export type SessionDeletion = 'deleted' | 'missing' | 'busy'

export interface NewSession {
  id?: string
  title?: string
  system?: string | undefined
  ownerId?: string
  settings?: SessionSettings | undefined
}

/** A session title or a message that matched a search. */
export interface SearchHit {
  sessionId: string
  sessionTitle: string
  /** Null for a title match. */
  messageId: string | null
  role: Role | null
  /** The matched text: the title, or the message's first SEARCH_TEXT_CHARS characters. */
  text: string
  createdAt: string
}

/**
 * How much of a message's text a search hands over for its snippet: the snippet's work never
 * grows with a message, however large an import made it. SQLite's index keeps this many of a
 * longer message's characters (migration sqlite/023): change both together.
 */
export const SEARCH_TEXT_CHARS = 20_000

/** How many of the newest matches of a search are ranked (docs/api.md "Search"). */
export const SEARCH_WINDOW = 500

/** A message of an imported conversation, its ids those of its source. */
export interface ImportedMessage {
  id: string
  /** Its id in the file, once the importer gives it an id of this server. */
  sourceId?: string | undefined
  /** Null for a first message; else a message listed before this one. */
  parentId: string | null
  role: Role
  content: string
  model: string | null
  status: Exclude<MessageStatus, 'streaming'>
  createdAt: string
  /** Its images as the file has them (base64), until the importer has read and checked them. */
  imageTexts?: string[] | undefined
  images?: NewImage[] | undefined
  /** A turn with tools (docs/tools.md): an assistant message's calls; a tool message's call and tool. */
  toolCalls?: ToolCall[] | undefined
  callId?: string | undefined
  toolName?: string | undefined
  /** An assistant message's reasoning, and how long it took. */
  thinking?: string | undefined
  thinkingMs?: number | undefined
  /** The web pages a reply cites (a ChatGPT reply's citations, this server's export). */
  sources?: ReplySource[] | undefined
}

/** A conversation to import (docs/api.md "Export and import"), as lib/conversations/import.ts reads it from a file. */
export interface ImportedConversation {
  /** Where it came from (`chatgpt:<id>`, `open-webui:<id>`, `chat-ollama:<id>`): imported once per user. */
  sourceId: string
  /** A session of this server it is an export of: already there while that session is. */
  sameAsSession: string | null
  title: string
  createdAt: string
  updatedAt: string
  /** Parents before their children. */
  messages: ImportedMessage[]
  /** The end of its active path (a message id of `messages`), or null. */
  currentId: string | null
}

/** A request made with an Idempotency-Key (docs/api.md "Safe retries"). */
export interface IdempotentRequest {
  ownerId: string
  key: string
  /** The route and body it came with: the same key with another request is refused. */
  fingerprint: string
  /** Keys claimed before this are forgotten (24 hours ago). */
  expiredBefore: string
  /** A claim with no outcome since this is a request that died: it is claimed anew. */
  staleBefore: string
}

/** What the first request with a key made. */
export interface IdempotentOutcome {
  sessionId?: string | null
  /** A chat's reply. */
  messageId?: string | null
  /** The HTTP status of a route that answers at once. */
  status?: number | null
  /** That answer's JSON; for a chat, its start event's `context`. */
  answer?: string | null
}

export type IdempotencyClaim =
  | { state: 'new' }
  | { state: 'mismatch' }
  | { state: 'running' }
  | { state: 'done'; outcome: IdempotentOutcome }

/** The first line of a message, cut at a word boundary to at most 60 characters. */
export function titleFromMessage(content: string): string {
  const firstLine = content.trim().split(/\r?\n/, 1)[0]!.trim()
  const chars = [...firstLine]
  if (chars.length <= TITLE_MAX_CHARS) return firstLine || DEFAULT_TITLE
  const cut = chars.slice(0, TITLE_MAX_CHARS + 1).join('')
  const lastSpace = cut.search(/\s\S*$/)
  const title = (lastSpace > 0 ? cut.slice(0, lastSpace) : chars.slice(0, TITLE_MAX_CHARS).join('')).trimEnd()
  return title || DEFAULT_TITLE
}

/** A session row's cut columns as a ContextCut; null when nothing was ever cut. */
export function toContextCut(row: Record<string, unknown> | undefined): ContextCut | null {
  if (!row || (row.context_cut_message_id == null && row.context_summary == null)) return null
  return { messageId: (row.context_cut_message_id as string | null) ?? null, summary: (row.context_summary as string | null) ?? null }
}

/** A search result row (session_id, title, message_id, role, text, created_at) as a SearchHit. */
export function toSearchHit(row: Record<string, unknown>): SearchHit {
  const createdAt = row.created_at instanceof Date ? row.created_at.toISOString() : String(row.created_at)
  return {
    sessionId: String(row.session_id),
    sessionTitle: String(row.title),
    messageId: (row.message_id as string | null) ?? null,
    role: (row.role as Role | null) ?? null,
    text: String(row.text),
    createdAt,
  }
}

/** The session's cut when it lies on the path sent (a cut made on another branch does not apply). */
export function cutOnPath(cut: ContextCut | null, path: HistoryEntry[]): ContextCut | null {
  if (!cut?.messageId) return cut
  return path.some((message) => message.id === cut.messageId) ? cut : null
}

/** An idempotency_keys row as a claim's outcome (null while its request is still running). */
export function toIdempotentOutcome(row: Record<string, unknown>): IdempotentOutcome | null {
  if (row.message_id == null && row.status == null) return null
  const numberOrNull = (value: unknown) => (value == null ? null : Number(value))
  return {
    sessionId: (row.session_id as string | null) ?? null,
    messageId: (row.message_id as string | null) ?? null,
    status: numberOrNull(row.status),
    answer: (row.answer as string | null) ?? null,
  }
}

/**
 * Who owns an import's session until it is finished: nobody a request can act for, so it is seen
 * nowhere; with the instance writing it, so that an unfinished one can be told and removed.
 */
export const importingOwner = (instanceId: string | null): string => (instanceId === null ? 'importing' : `importing:${instanceId}`)

/** An attachments row (id, media_type, width, height, size, and data when read) as a stored image. */
export function toImage(row: Record<string, unknown>): ImageInfo | StoredImage {
  const image: ImageInfo = { id: String(row.id), media_type: String(row.media_type), width: Number(row.width), height: Number(row.height), bytes: Number(row.size) }
  return row.data == null ? image : { ...image, data: row.data as Uint8Array }
}

/** The tool columns of a messages row (tool_calls, tool_call_id, tool_name) as a Message's fields. */
export function toolFieldsOf(row: Record<string, unknown>): Pick<Message, 'tool_calls' | 'call_id' | 'name'> {
  if (row.tool_calls != null) return { tool_calls: JSON.parse(String(row.tool_calls)) as ToolCall[] }
  if (row.tool_call_id != null) return { call_id: String(row.tool_call_id), name: String(row.tool_name) }
  return {}
}

/** The reasoning fields of a message row. */
export function reasoningFieldsOf(row: Record<string, unknown>): Pick<Message, 'thinking' | 'thinking_ms'> {
  if (row.thinking == null) return {}
  return { thinking: String(row.thinking), ...(row.thinking_ms == null ? {} : { thinking_ms: Number(row.thinking_ms) }) }
}

/** The sources of a message row (JSON text in SQLite, jsonb in PostgreSQL). */
export function sourcesFieldsOf(row: Record<string, unknown>): Pick<Message, 'sources'> {
  if (row.sources == null) return {}
  return { sources: (typeof row.sources === 'string' ? JSON.parse(row.sources) : row.sources) as ReplySource[] }
}

/** A reply's figures from its row: prompt_tokens, completion_tokens (its tokens_used), tokens_per_second. */
export function replyFiguresOf(row: Record<string, unknown>): Pick<Message, 'prompt_tokens' | 'completion_tokens' | 'tokens_per_second' | 'rating' | 'done_reason'> {
  if (row.role !== 'assistant') return {}
  return {
    ...(row.rating == null ? {} : { rating: row.rating as Rating }),
    ...(row.done_reason == null ? {} : { done_reason: String(row.done_reason) }),
    ...(row.prompt_tokens == null ? {} : { prompt_tokens: Number(row.prompt_tokens) }),
    ...(row.tokens_used == null ? {} : { completion_tokens: Number(row.tokens_used) }),
    ...(row.tokens_per_second == null ? {} : { tokens_per_second: Math.round(Number(row.tokens_per_second) * 10) / 10 }),
  }
}

/** A session's settings column: JSON text in SQLite, jsonb (already parsed) in PostgreSQL. */
export const settingsOf = (value: unknown): SessionSettings => (typeof value === 'string' ? JSON.parse(value) : value ?? {}) as SessionSettings

/** A session's settings column as the Session's fields. */
export function settingsFieldsOf(value: unknown): Pick<Session, 'model' | 'options' | 'think' | 'files' | 'collections'> {
  const settings = settingsOf(value)
  return { model: settings.model ?? null, options: settings.options ?? {}, think: settings.think ?? null, files: settings.files ?? [], collections: settings.collections ?? [] }
}

/** The settings after `change`: each field given replaces the kept one; null (or options {}) clears it. */
export function changedSettings(settings: SessionSettings, change: SessionChange): SessionSettings {
  const next = { ...settings }
  if (change.model !== undefined) next.model = change.model ?? undefined
  if (change.options !== undefined) next.options = Object.keys(change.options).length ? change.options : undefined
  if (change.think !== undefined) next.think = change.think ?? undefined
  if (change.files !== undefined) next.files = change.files.length ? change.files : undefined
  if (change.collections !== undefined) next.collections = change.collections.length ? change.collections : undefined
  return JSON.parse(JSON.stringify(next)) as SessionSettings
}

/** A system message added to a session that has messages goes before its first: this long before it. */
export const SYSTEM_BEFORE_FIRST_MS = 1

/** When a system message added later is dated: just before the session's first message, or now in an empty session. */
export function systemMessageTime(firstMessageAt: string | Date | null | undefined, now: string): string {
  return firstMessageAt == null ? now : new Date(new Date(firstMessageAt).getTime() - SYSTEM_BEFORE_FIRST_MS).toISOString()
}

/** The tool fields of a history row, as the model is sent them. */
export function toolHistoryOf(row: Record<string, unknown>): Pick<HistoryEntry, 'toolCalls' | 'toolName'> {
  if (row.tool_calls != null) return { toolCalls: JSON.parse(String(row.tool_calls)) as ToolCall[] }
  if (row.tool_name != null) return { toolName: String(row.tool_name) }
  return {}
}

/**
 * When the rows of a tool step and the reply after it are stored: the step at `now` (never before
 * the reply's last time, so the step follows what came before it), the reply a millisecond later,
 * so that listing by time keeps the turn in the order it happened.
 */
export function toolStepTimes(replyCreatedAt: string, now: string): { step: string; reply: string } {
  const step = now > replyCreatedAt ? now : replyCreatedAt
  return { step, reply: new Date(Date.parse(step) + 1).toISOString() }
}

/** A tool_approvals row's outcome: a denial stamped at its expiry is one nobody answered in time. */
export function decisionOf(row: Record<string, unknown>, iso: (value: unknown) => string): ApprovalDecision {
  if (row.decision === 'approved') return 'approved'
  return iso(row.decided_at) === iso(row.expires_at) ? 'expired' : 'denied'
}
