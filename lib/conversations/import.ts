/**
 * Reading a conversation from a file (docs/api.md "Export and import"): this server's export, ChatGPT's
 * `conversations.json` and Open WebUI's export. Each format gives its messages as a tree (ids and
 * parents); one builder then keeps the messages that carry text, links each to its nearest kept
 * ancestor, orders parents before children, and finds the active path's end.
 */
import { createHash } from 'node:crypto'
import type { ImportedConversation, ImportedMessage, MessageStatus, Role } from '../store/chat-store.ts'

/** The most messages one imported conversation may hold (a bound on one transaction). */
export const MAX_IMPORTED_MESSAGES = 10_000
const TITLE_MAX_CHARS = 200
export const EXPORT_FORMAT = 'chat-ollama.conversation'

/** Why a conversation of the file is not imported: reported in `skipped`. */
export class Unreadable extends Error {}

/** A message as the file has it: `keep` false for what is not imported (hidden, empty, a tool's). */
interface SourceNode {
  id: string
  parent: string | null
  keep: boolean
  role: Role
  content: string
  model: string | null
  status: Exclude<MessageStatus, 'streaming'>
  /** Milliseconds since 1970, or null when the file does not say. */
  at: number | null
  /** Base64 images (this server's exports carry them), read and checked by the importer. */
  images?: string[]
  /** A turn with tools (this server's exports carry them, docs/tools.md). */
  tool?: Pick<ImportedMessage, 'toolCalls' | 'callId' | 'toolName'>
  /** A reply's reasoning (docs/api.md "Reasoning"): each format's own form of it, kept apart from the text. */
  reasoning?: Reasoning
}

type Reasoning = Pick<ImportedMessage, 'thinking' | 'thinkingMs'>

interface SourceConversation {
  sourceId: string
  sameAsSession: string | null
  title: unknown
  createdAt: number | null
  updatedAt: number | null
  current: string | null
  nodes: SourceNode[]
}

/**
 * The longest reply or tool result an import stores (a live reply is bounded by the model's
 * output instead): a million characters, some 250,000 tokens.
 */
export const IMPORTED_REPLY_MAX_CHARS = 1_000_000

/** The longest texts an import stores: user and system messages as any (MAX_MESSAGE_CHARS), replies IMPORTED_REPLY_MAX_CHARS. */
export interface ImportLimits {
  maxMessageChars: number
}

/** The conversation `item` holds, in whichever known format; throws Unreadable saying why not. */
export function readConversation(item: unknown, limits: ImportLimits): ImportedConversation {
  if (!isObject(item)) throw new Unreadable('not a conversation this server can read')
  if (item.format === EXPORT_FORMAT) return build(fromOurs(item), limits)
  if (isObject(item.mapping)) return build(fromChatGpt(item), limits)
  if (isObject(item.chat) && isObject(item.chat.history) && isObject(item.chat.history.messages)) return build(fromOpenWebUi(item), limits)
  throw new Unreadable('not a conversation this server can read (chat-ollama, ChatGPT or Open WebUI export)')
}

/** Whether `item` looks like a conversation of a known format at all (for telling a wrong file from a bad entry). */
export function isKnownFormat(item: unknown): boolean {
  return isObject(item) && (item.format === EXPORT_FORMAT || isObject(item.mapping) || (isObject(item.chat) && isObject(item.chat.history)))
}

type Json = Record<string, any>
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)
const text = (value: unknown): string => (typeof value === 'string' ? value : '')
const ROLES = new Set<Role>(['system', 'user', 'assistant'])
const FINAL_STATUSES = new Set(['complete', 'cancelled', 'error', 'interrupted'])
/** Seconds since 1970 (ChatGPT, Open WebUI) as milliseconds; null for anything else. */
const fromSeconds = (value: unknown): number | null => (typeof value === 'number' && value > 0 && value * 1000 <= MAX_TIME_MS ? value * 1000 : null)
/** The latest time a JavaScript Date can hold. */
const MAX_TIME_MS = 8.64e15
const fromIso = (value: unknown): number | null => {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN
  return Number.isFinite(ms) ? ms : null
}
const roleOf = (value: unknown): Role | null => (ROLES.has(value as Role) ? (value as Role) : null)
/** A model's name as the file gives it, as long as a chat may name one. */
const modelOf = (value: unknown): string | null => (typeof value === 'string' && value.trim() ? value.trim().slice(0, 200) : null)

function limitNodes(entries: number): void {
  if (entries > MAX_IMPORTED_MESSAGES) throw new Unreadable(`more than ${MAX_IMPORTED_MESSAGES} messages`)
}

/** A stable id for a conversation its file gives none: the hash of what it says. */
const contentId = (item: unknown) => createHash('sha256').update(JSON.stringify(item)).digest('base64url').slice(0, 32)

/** Most images a message of a file may list (MAX_IMAGES_PER_MESSAGE, checked by the importer, is lower). */
const MAX_FILE_IMAGES = 64

/** A message's images as this server exports them: `[{data: base64, …}]`. */
function imagesOf(value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.length > MAX_FILE_IMAGES) throw new Unreadable(`a message's images are not a list of at most ${MAX_FILE_IMAGES}`)
  return value.map((image) => {
    if (!isObject(image) || typeof image.data !== 'string') throw new Unreadable('an image of a message has no base64 data')
    return image.data
  })
}

/** Most calls one message of a file may make (MAX_TOOL_STEPS × 16 calls is far below). */
const MAX_FILE_TOOL_CALLS = 64
/** A name or id of a tool call as files give it. */
const toolText = (value: unknown, max: number): value is string => typeof value === 'string' && value.length > 0 && value.length <= max

/** A message's tool fields as this server exports them: `tool_calls` on an assistant, `call_id` and `name` on a tool result. */
function toolOf(message: Json, role: Role | null): SourceNode['tool'] | undefined {
  if (role === 'tool') {
    if (!toolText(message.call_id, 100) || !toolText(message.name, 200)) throw new Unreadable('a tool result has no call_id or name')
    return { callId: message.call_id, toolName: message.name }
  }
  if (message.tool_calls === undefined || role !== 'assistant') return undefined
  const calls: unknown = message.tool_calls
  if (!Array.isArray(calls) || calls.length > MAX_FILE_TOOL_CALLS) throw new Unreadable(`a message's tool_calls are not a list of at most ${MAX_FILE_TOOL_CALLS}`)
  return {
    toolCalls: calls.map((call) => {
      if (!isObject(call) || !toolText(call.call_id, 100) || !toolText(call.name, 200) || !isObject(call.arguments)) throw new Unreadable('a tool call has no call_id, name or arguments object')
      return { call_id: call.call_id, name: call.name, arguments: call.arguments }
    }),
  }
}

/** The longest reasoning time a file may claim (a day), in milliseconds. */
const MAX_THINKING_MS = 86_400_000
const thinkingMsOf = (value: unknown): number | undefined => (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_THINKING_MS ? value : undefined)

/** A reply's reasoning as this server exports it: `thinking` (and `thinking_ms`) on an assistant message. */
function ourReasoning(message: Json, role: Role | null): Reasoning | undefined {
  if (message.thinking === undefined || message.thinking === null || role !== 'assistant') return undefined
  if (typeof message.thinking !== 'string') throw new Unreadable('a message\'s thinking is not a string')
  return message.thinking ? { thinking: message.thinking, thinkingMs: thinkingMsOf(message.thinking_ms) } : undefined
}

/**
 * Open WebUI keeps a reply's reasoning in its text, as `<details type="reasoning" duration="12">`
 * with a `<summary>` and the reasoning quoted (`> `): taken out of the text into the reasoning.
 */
function openWebUiReasoning(content: string): { content: string; reasoning?: Reasoning } {
  if (!content.includes('<details type="reasoning"')) return { content }
  const thoughts: string[] = []
  let seconds = 0
  const rest = content.replace(/<details type="reasoning"([^>]{0,500})>([\s\S]*?)<\/details>[ \t]*\n?/g, (_whole, attributes: string, inner: string) => {
    seconds += Number(/\bduration="(\d{1,6})"/.exec(attributes)?.[1] ?? 0)
    const body = inner.replace(/<summary>[\s\S]*?<\/summary>/, '').split('\n').map((line) => line.replace(/^>\s?/, '')).join('\n').trim()
    if (body) thoughts.push(body)
    return ''
  })
  if (!thoughts.length) return { content: rest.trimStart() }
  return { content: rest.trimStart(), reasoning: { thinking: thoughts.join('\n\n'), thinkingMs: seconds ? seconds * 1000 : undefined } }
}

/** ChatGPT's reasoning nodes: `thoughts` (each a summary and its content), and `reasoning_recap` ("Thought for 1m 12s"). */
function chatGptThoughts(content: Json): { thinking?: string; thinkingMs?: number } {
  if (content.content_type === 'thoughts' && Array.isArray(content.thoughts)) {
    const thinking = content.thoughts.filter(isObject).map((thought) => [text(thought.summary), text(thought.content)].filter(Boolean).join('\n\n')).filter(Boolean).join('\n\n')
    return thinking ? { thinking } : {}
  }
  if (content.content_type === 'reasoning_recap') {
    const recap = /(?:(\d{1,4})\s*m(?:in(?:ute)?s?)?\s*)?(?:(\d{1,5})\s*s(?:ec(?:ond)?s?)?)?\s*$/.exec(text(content.content))
    const ms = ((Number(recap?.[1] ?? 0) * 60) + Number(recap?.[2] ?? 0)) * 1000
    return ms ? { thinkingMs: thinkingMsOf(ms) } : {}
  }
  return {}
}

/** Reasoning nodes a ChatGPT reply's answer follows, read upwards; at most this many. */
const MAX_REASONING_NODES = 32

function fromOurs(item: Json): SourceConversation {
  if (item.version !== 1) throw new Unreadable(`version ${String(JSON.stringify(item.version)).slice(0, 40)} of ${EXPORT_FORMAT} is not known`)
  const session = isObject(item.session) ? item.session : {}
  const messages: unknown[] = Array.isArray(item.messages) ? item.messages : []
  limitNodes(messages.length)
  const id = typeof session.id === 'string' ? session.id : contentId(item)
  return {
    sourceId: `chat-ollama:${id}`,
    sameAsSession: typeof session.id === 'string' ? session.id : null,
    title: session.title,
    createdAt: fromIso(session.created_at),
    updatedAt: fromIso(session.updated_at),
    current: typeof item.current_message_id === 'string' ? item.current_message_id : null,
    nodes: messages.filter(isObject).map((message) => {
      // Tool results are this server's own: other formats' `tool` messages are not imported.
      const role = message.role === 'tool' ? 'tool' : roleOf(message.role)
      const status = message.status === 'streaming' || message.status === 'awaiting_approval' ? 'interrupted' : message.status
      const images = imagesOf(message.images)
      const tool = toolOf(message, role)
      const reasoning = ourReasoning(message, role)
      return {
        ...(reasoning ? { reasoning } : {}),
        id: String(message.id),
        parent: typeof message.parent_id === 'string' ? message.parent_id : null,
        keep: role !== null && (text(message.content) !== '' || images.length > 0 || tool !== undefined || reasoning !== undefined),
        ...(images.length ? { images } : {}),
        ...(tool ? { tool } : {}),
        role: role ?? 'user',
        content: text(message.content),
        model: modelOf(message.model),
        status: FINAL_STATUSES.has(status) ? status : 'complete',
        at: fromIso(message.created_at),
      }
    }),
  }
}

/** ChatGPT's `conversations.json` entry: `mapping` of nodes `{message, parent, children}`, `current_node`. */
function fromChatGpt(item: Json): SourceConversation {
  const entries = Object.entries(item.mapping as Json)
  limitNodes(entries.length)
  const thoughts = new Map<string, { thinking?: string; thinkingMs?: number }>()
  const source: SourceConversation = {
    sourceId: `chatgpt:${text(item.conversation_id) || text(item.id) || contentId(item)}`,
    sameAsSession: null,
    title: item.title,
    createdAt: fromSeconds(item.create_time),
    updatedAt: fromSeconds(item.update_time),
    current: typeof item.current_node === 'string' ? item.current_node : null,
    nodes: entries.map(([id, node]) => {
      const message = isObject(node) && isObject(node.message) ? node.message : null
      const role = roleOf(message?.author?.role)
      const content = isObject(message?.content) ? message.content : {}
      const parts: unknown[] = Array.isArray(content.parts) ? content.parts : [content.text]
      const body = parts.filter((part) => typeof part === 'string').join('\n')
      const hidden = message?.metadata?.is_visually_hidden_from_conversation === true
      const thought = role === 'assistant' ? chatGptThoughts(content) : {}
      if (thought.thinking || thought.thinkingMs) thoughts.set(id, thought)
      return {
        id,
        parent: isObject(node) && typeof node.parent === 'string' ? node.parent : null,
        keep: role !== null && body.trim() !== '' && !hidden,
        role: role ?? 'user',
        content: body,
        model: role === 'assistant' ? modelOf(message?.metadata?.model_slug) : null,
        status: 'complete',
        at: fromSeconds(message?.create_time),
      }
    }),
  }
  // A reply's reasoning is in the nodes above its answer (not shown as messages): its thinking, in order, and the recap's time.
  const byId = new Map(source.nodes.map((node) => [node.id, node]))
  for (const node of source.nodes) {
    if (!node.keep || node.role !== 'assistant') continue
    const found: string[] = []
    let thinkingMs: number | undefined
    let above = node.parent === null ? undefined : byId.get(node.parent)
    for (let step = 0; above && !above.keep && step < MAX_REASONING_NODES; step++) {
      const thought = thoughts.get(above.id)
      if (thought?.thinking) found.unshift(thought.thinking)
      thinkingMs ??= thought?.thinkingMs
      above = above.parent === null ? undefined : byId.get(above.parent)
    }
    if (found.length) node.reasoning = { thinking: found.join('\n\n'), thinkingMs }
  }
  return source
}

/** Open WebUI's export entry: `chat.history.messages` by id (`parentId`, `timestamp` in seconds), `currentId`. */
function fromOpenWebUi(item: Json): SourceConversation {
  const history = item.chat.history as Json
  const entries = Object.entries(history.messages as Json)
  limitNodes(entries.length)
  return {
    sourceId: `open-webui:${text(item.id) || text(item.chat.id) || contentId(item)}`,
    sameAsSession: null,
    title: item.title ?? item.chat.title,
    createdAt: fromSeconds(item.created_at ?? item.chat.timestamp),
    updatedAt: fromSeconds(item.updated_at),
    current: typeof history.currentId === 'string' ? history.currentId : null,
    nodes: entries.map(([id, message]) => {
      const role = roleOf(isObject(message) ? message.role : null)
      const { content: body, reasoning } = role === 'assistant' ? openWebUiReasoning(text(message.content)) : { content: isObject(message) ? text(message.content) : '', reasoning: undefined }
      return {
        ...(reasoning ? { reasoning } : {}),
        id,
        parent: isObject(message) && typeof message.parentId === 'string' ? message.parentId : null,
        keep: role !== null && (body.trim() !== '' || reasoning !== undefined),
        role: role ?? 'user',
        content: body,
        model: isObject(message) && role === 'assistant' ? modelOf(message.model) : null,
        status: 'complete',
        at: fromSeconds(isObject(message) ? message.timestamp : null),
      }
    }),
  }
}

/**
 * The conversation to store: kept messages linked to their nearest kept ancestor (a cycle or a
 * missing parent makes a message a first one), parents before children, no message older than its
 * parent, and the active path's end at the nearest kept message on the file's current path.
 */
function build(source: SourceConversation, limits: ImportLimits): ImportedConversation {
  const byId = new Map(source.nodes.map((node) => [node.id, node]))
  const keptAncestor = new Map<string, string | null>()
  /** The nearest kept node at or above `id`, found once per node (iteratively: no recursion on file data). */
  const nearestKept = (id: string | null): string | null => {
    const walked: string[] = []
    let at = id
    let found: string | null = null
    const seen = new Set<string>()
    while (at !== null) {
      if (keptAncestor.has(at)) {
        found = keptAncestor.get(at)!
        break
      }
      const node = byId.get(at)
      if (!node || seen.has(at)) break
      seen.add(at)
      walked.push(at)
      if (node.keep) {
        found = at
        break
      }
      at = node.parent
    }
    for (const step of walked) keptAncestor.set(step, found)
    return found
  }
  const kept = source.nodes.filter((node) => node.keep)
  const parentOf = new Map<string, string | null>()
  const children = new Map<string | null, SourceNode[]>()
  for (const node of kept) {
    const parent = nearestKept(node.parent)
    parentOf.set(node.id, parent)
    const siblings = children.get(parent)
    if (siblings) siblings.push(node)
    else children.set(parent, [node])
  }
  // Parents before children: walking down from the first messages. What a walk never reaches
  // hangs in a cycle of the file: each such message, met in file order, becomes a first one.
  const fallback = source.createdAt ?? Date.now()
  const messages: ImportedMessage[] = []
  const atOf = new Map<string, number>()
  const queue: SourceNode[] = [...(children.get(null) ?? [])]
  let walked = 0
  const walk = () => {
    for (; walked < queue.length; walked++) {
      const node = queue[walked]!
      // Met again through the cycle it was taken out of.
      if (atOf.has(node.id)) continue
      const parent = parentOf.get(node.id)!
      // No message before the one it follows: the path reads in order.
      const at = Math.max(node.at ?? fallback, parent === null ? 0 : atOf.get(parent)!)
      atOf.set(node.id, at)
      messages.push({ id: node.id, parentId: parent, role: node.role, content: node.content, model: node.model, status: node.status, createdAt: new Date(at).toISOString(), ...(node.images ? { imageTexts: node.images } : {}), ...node.tool, ...node.reasoning })
      for (const child of children.get(node.id) ?? []) queue.push(child)
    }
  }
  walk()
  for (const node of kept) {
    if (atOf.has(node.id)) continue
    parentOf.set(node.id, null)
    queue.push(node)
    walk()
  }
  if (messages.length === 0) throw new Unreadable('no message with text or images')
  for (const message of messages) {
    if (!message.content.isWellFormed() || message.content.includes('\0')) throw new Unreadable('a message holds a character that cannot be stored (U+0000 or a lone surrogate)')
    const [most, limit] = message.role === 'user' || message.role === 'system' ? [limits.maxMessageChars, 'MAX_MESSAGE_CHARS'] : [IMPORTED_REPLY_MAX_CHARS, 'the limit for an imported reply']
    if (message.content.length > most) throw new Unreadable(`a message of role ${message.role} has ${message.content.length} characters, more than ${limit} (${most})`)
    if (message.thinking !== undefined) {
      if (!message.thinking.isWellFormed() || message.thinking.includes('\0')) throw new Unreadable('a reply\'s reasoning holds a character that cannot be stored (U+0000 or a lone surrogate)')
      if (message.thinking.length > IMPORTED_REPLY_MAX_CHARS) throw new Unreadable(`a reply's reasoning has ${message.thinking.length} characters, more than the limit for an imported reply (${IMPORTED_REPLY_MAX_CHARS})`)
    }
  }
  const newest = messages.reduce((latest, message) => (message.createdAt > latest.createdAt ? message : latest))
  const currentId = (source.current !== null && nearestKept(source.current)) || newest.id
  const title = text(source.title).trim()
  const createdAt = new Date(Math.min(source.createdAt ?? Infinity, Date.parse(messages[0]!.createdAt))).toISOString()
  const updatedAt = new Date(Math.max(source.updatedAt ?? 0, Date.parse(newest.createdAt))).toISOString()
  return {
    sourceId: source.sourceId.slice(0, 300),
    sameAsSession: source.sameAsSession,
    title: title && title.isWellFormed() && !title.includes('\0') ? [...title].slice(0, TITLE_MAX_CHARS).join('') : 'Imported chat',
    createdAt,
    updatedAt,
    messages,
    currentId,
  }
}
