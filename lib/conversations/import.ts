/**
 * Reading a conversation from a file (docs/api.md "Export and import"): this server's export, ChatGPT's
 * `conversations.json` and Open WebUI's export. Each format gives its messages as a tree (ids and
 * parents); one builder then keeps the messages that carry text, links each to its nearest kept
 * ancestor, orders parents before children, and finds the active path's end.
 */
import { createHash } from 'node:crypto'
import type { ImportedConversation, ImportedMessage, MessageStatus, Role, ToolCall, WebSource } from '../store/chat-store.ts'

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
  /** The web pages a reply cites. */
  sources?: WebSource[]
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
  const format = formatOf(item)
  if (format === 'chat-ollama') return build(fromOurs(item), limits)
  if (format === 'chatgpt') {
    if (!isObject(item.mapping)) throw new Unreadable('a ChatGPT conversation without `mapping` (the object that holds its messages)')
    return build(fromChatGpt(item), limits)
  }
  if (format === 'open-webui') {
    // Open WebUI's export wraps each chat as `{id, chat, …}`; a chat saved on its own is the bare `chat`.
    const chat = isObject(item.chat) ? item.chat : item
    if (!isObject(chat.history) || !isObject(chat.history.messages)) throw new Unreadable('an Open WebUI chat without `history.messages` (the object that holds its messages)')
    return build(fromOpenWebUi(item, chat), limits)
  }
  throw new Unreadable('not a conversation this server can read (chat-ollama, ChatGPT or Open WebUI export)')
}

/** Which export `item` looks like, by the fields only that format has. */
function formatOf(item: Json): 'chat-ollama' | 'chatgpt' | 'open-webui' | null {
  if (item.format === EXPORT_FORMAT) return 'chat-ollama'
  if ('mapping' in item || ('current_node' in item && ('conversation_id' in item || 'default_model_slug' in item))) return 'chatgpt'
  if (isObject(item.chat) || isObject(item.history)) return 'open-webui'
  return null
}

/** Whether `item` looks like a conversation of a known format at all (for telling a wrong file from a bad entry). */
export function isKnownFormat(item: unknown): boolean {
  return isObject(item) && formatOf(item) !== null
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

/** The web pages of a reply as this server exports its `sources` (a document's chunk names a file of the server it came from: left out). */
function ourWebSources(value: unknown): WebSource[] {
  if (!Array.isArray(value)) return []
  return value.slice(0, MAX_SOURCES).filter(isObject).flatMap((source) => {
    const url = webAddress(source.url)
    return url && Number.isInteger(source.n) && source.n > 0 && source.n <= 1000
      ? [{ n: source.n, url, title: text(source.title).slice(0, 300).toWellFormed(), snippet: text(source.snippet).slice(0, SNIPPET_CHARS).toWellFormed() }]
      : []
  })
}

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
      const sources = role === 'assistant' ? ourWebSources(message.sources) : []
      return {
        ...(sources.length ? { sources } : {}),
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

/** What stands in a message's text for an image the export does not hold, so that no turn reads as empty. */
export const MISSING_IMAGE = '[image not included in the export]'
const MISSING_AUDIO = '[audio not included in the export]'
/** What stands between a question and the next one where the file has no reply. */
export const MISSING_REPLY = '[reply not included in the export]'

/** A ChatGPT message's text: its string parts, what stands for each image or recording, or its `text` (code, a tool's output). */
function chatGptText(content: Json): string {
  if (content.content_type === 'tether_browsing_display') return text(content.result) || text(content.summary)
  if (!Array.isArray(content.parts)) return text(content.text)
  return content.parts.map((part: unknown) => {
    if (typeof part === 'string') return part
    if (!isObject(part)) return ''
    if (part.content_type === 'image_asset_pointer') return MISSING_IMAGE
    if (part.content_type === 'audio_transcription') return text(part.text)
    if (part.content_type === 'audio_asset_pointer' || part.content_type === 'real_time_user_audio_video_asset_pointer') return MISSING_AUDIO
    return text(part.text)
  }).filter((part: string) => part !== '').join('\n')
}

/** Most pages one reply may cite (a bound on what a file can make a message hold). */
const MAX_SOURCES = 64
const SNIPPET_CHARS = 300

/** A cited page's address: http(s) only, as long as an address reasonably is. */
function webAddress(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 2048) return null
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null
  } catch {
    return null
  }
}

/** ChatGPT's citation markers: `【13†source】`, and the private-use-area form `\ue200cite\ue202turn0search1\ue201`. */
const CITATION_MARKER = /[ \t]*(?:【[^】\n]{0,120}】|\ue200[^\ue201\n]{0,300}\ue201)/g

/**
 * A ChatGPT reply's citations (`metadata.citations` with their places in the text, and
 * `metadata.content_references` with the marker each replaces) as the reply's `sources`, each
 * marker replaced by the numbers of its pages (`[1]`, as this server's own replies cite); markers
 * left without a page are taken out.
 */
function chatGptCitations(body: string, metadata: Json): { content: string; sources?: WebSource[] } {
  const sources: WebSource[] = []
  const numberOf = (url: string, title: unknown, snippet: unknown): number => {
    const known = sources.find((source) => source.url === url)
    if (known) return known.n
    if (sources.length >= MAX_SOURCES) return 0
    // Well formed: a cut may split a pair, and PostgreSQL's jsonb refuses a lone surrogate.
    sources.push({ n: sources.length + 1, url, title: text(title).slice(0, 300).toWellFormed() || new URL(url).hostname, snippet: text(snippet).slice(0, SNIPPET_CHARS).toWellFormed() })
    return sources.length
  }
  const cite = (numbers: number[]) => [...new Set(numbers.filter((n) => n > 0))].map((n) => `[${n}]`).join('')
  // Places in the text, replaced from the last so that the earlier ones stay where they are.
  const placed: Array<{ start: number; end: number; numbers: number[] }> = []
  for (const citation of (Array.isArray(metadata.citations) ? metadata.citations : []).slice(0, 500)) {
    if (!isObject(citation) || !Number.isInteger(citation.start_ix) || !Number.isInteger(citation.end_ix)) continue
    const { start_ix: start, end_ix: end } = citation as { start_ix: number; end_ix: number }
    if (start < 0 || end <= start || end > body.length || !/^(【|\ue200)/.test(body.slice(start, end))) continue
    const page = isObject(citation.metadata) ? citation.metadata : {}
    const url = webAddress(page.url)
    placed.push({ start, end, numbers: url ? [numberOf(url, page.title, page.text)] : [] })
  }
  const markers = new Map<string, number[]>()
  for (const reference of (Array.isArray(metadata.content_references) ? metadata.content_references : []).slice(0, 500)) {
    if (!isObject(reference) || typeof reference.matched_text !== 'string' || !reference.matched_text.trim()) continue
    const items: unknown[] = Array.isArray(reference.items) ? reference.items : []
    const numbers = items.filter(isObject).flatMap((item) => {
      const url = webAddress(item.url)
      return url ? [numberOf(url, item.title, item.snippet ?? item.attribution)] : []
    })
    markers.set(reference.matched_text, [...(markers.get(reference.matched_text) ?? []), ...numbers])
  }
  /** The numbers standing where a marker stood: after a space, as this server's own replies cite. */
  const spaced = (before: string, numbers: number[]) => (cite(numbers) && before !== '' && !/\s/.test(before) ? ` ${cite(numbers)}` : cite(numbers))
  let content = body
  placed.sort((a, b) => b.start - a.start)
  let after = Infinity
  for (const { start, end, numbers } of placed) {
    if (end > after) continue
    content = content.slice(0, start) + spaced(content.slice(start - 1, start), numbers) + content.slice(end)
    after = start
  }
  for (const [marker, numbers] of markers) content = content.replaceAll(marker, (_found: string, at: number, whole: string) => spaced(whole.slice(at - 1, at), numbers))
  // What stays of a marker with no page: nothing, nor the space before it.
  content = content.replace(CITATION_MARKER, '')
  return sources.length ? { content, sources } : { content }
}

/** Arguments of a ChatGPT message sent to a tool: its text as JSON when it is an object, else as the code or the input. */
function chatGptArguments(body: string, content: Json): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body)
    if (isObject(parsed)) return parsed
  } catch {}
  return content.content_type === 'code' ? { code: body } : { input: body }
}

/** A tool's name as ChatGPT gives it (`python`, `browser`, `dalle.text2im`, `web.run`): what a call may be named. */
const chatGptTool = (value: unknown): string | null => (toolText(value, 200) && value !== 'all' ? value : null)

/** Nodes above a tool's output searched for the call it answers. */
const MAX_CALL_DISTANCE = 8

/** ChatGPT's `conversations.json` entry: `mapping` of nodes `{message, parent, children}`, `current_node`. */
function fromChatGpt(item: Json): SourceConversation {
  const entries = Object.entries(item.mapping as Json)
  limitNodes(entries.length)
  const thoughts = new Map<string, { thinking?: string; thinkingMs?: number }>()
  const defaultModel = modelOf(item.default_model_slug)
  /** The messages sent to a tool, by node id; the tools' outputs, by node id: the tool's name. */
  const callsTo = new Set<string>()
  const outputsOf = new Map<string, string | null>()
  const source: SourceConversation = {
    sourceId: `chatgpt:${text(item.conversation_id) || text(item.id) || contentId(item)}`,
    sameAsSession: null,
    title: item.title,
    createdAt: fromSeconds(item.create_time),
    updatedAt: fromSeconds(item.update_time),
    current: typeof item.current_node === 'string' ? item.current_node : null,
    nodes: entries.map(([id, node]) => {
      const message = isObject(node) && isObject(node.message) ? node.message : null
      const author = isObject(message?.author) ? message.author : {}
      const role = author.role === 'tool' ? 'tool' : roleOf(author.role)
      const content = isObject(message?.content) ? message.content : {}
      const metadata = isObject(message?.metadata) ? message.metadata : {}
      const hidden = metadata.is_visually_hidden_from_conversation === true
      const thought = role === 'assistant' ? chatGptThoughts(content) : {}
      if (thought.thinking || thought.thinkingMs) thoughts.set(id, thought)
      const parent = isObject(node) && typeof node.parent === 'string' ? node.parent : null
      const at = fromSeconds(message?.create_time)
      const model = modelOf(metadata.model_slug) ?? defaultModel
      const body = thought.thinking || thought.thinkingMs ? '' : chatGptText(content)
      const recipient = role === 'assistant' ? chatGptTool(message?.recipient) : null
      if (recipient !== null) {
        // A message addressed to a tool is the reply's call of it: `call_id` is the node's id.
        callsTo.add(id)
        const call: ToolCall = { call_id: id.slice(0, 100), name: recipient, arguments: chatGptArguments(body, content) }
        return { id, parent, keep: !hidden, role: 'assistant', content: '', model, status: 'complete', at, tool: { toolCalls: [call] } }
      }
      if (role === 'tool') {
        outputsOf.set(id, chatGptTool(author.name))
        return { id, parent, keep: false, role, content: body, model: null, status: 'complete', at }
      }
      const unfinished = message?.status === 'in_progress' || ['interrupted', 'incomplete'].includes(metadata.finish_details?.type) || metadata.is_complete === false
      const cited = role === 'assistant' ? chatGptCitations(body, metadata) : { content: body }
      return {
        id,
        parent,
        keep: role !== null && cited.content.trim() !== '' && !hidden,
        role: role ?? 'user',
        content: cited.content,
        ...(cited.sources ? { sources: cited.sources } : {}),
        model: role === 'assistant' ? model : null,
        status: role === 'assistant' && unfinished ? 'interrupted' : 'complete',
        at,
      }
    }),
  }
  const byId = new Map(source.nodes.map((node) => [node.id, node]))
  // A tool's output answers the nearest call above it: kept as that call's result.
  for (const node of source.nodes) {
    if (!outputsOf.has(node.id)) continue
    let above = node.parent === null ? undefined : byId.get(node.parent)
    for (let step = 0; above && !callsTo.has(above.id) && step < MAX_CALL_DISTANCE; step++) above = above.parent === null ? undefined : byId.get(above.parent)
    if (!above?.keep || !callsTo.has(above.id)) continue
    const call = above.tool!.toolCalls![0]!
    node.keep = true
    node.tool = { callId: call.call_id, toolName: outputsOf.get(node.id) ?? call.name }
  }
  // A reply's reasoning is in the nodes above its answer (not shown as messages): its thinking, in order, and the recap's time.
  for (const node of source.nodes) {
    if (!node.keep || node.role !== 'assistant' || node.tool) continue
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

/** What a reply did, in order: text, a call of a tool, a tool's result, reasoning. */
type ReplyPart = { text: string } | { call: ToolCall } | { result: { callId: string; content: string } } | { thinking: string }

/** A reply's text and calls before the tools answered, their results, and its reasoning. */
interface ReplyStep {
  content: string
  thinking: string
  calls: ToolCall[]
  results: Array<{ callId: string; name: string; content: string }>
}

/** Most tool calls, results and texts one reply of a file may hold. */
const MAX_REPLY_PARTS = 512

/**
 * A reply's parts as steps, as this server stores a turn with tools: text and calls, then each
 * call's result, then the next step or the answer. A call without a result (or a result without
 * its call) is left out, as a model would refuse it.
 */
function replySteps(parts: ReplyPart[]): { steps: ReplyStep[]; answer: ReplyStep } {
  if (parts.length > MAX_REPLY_PARTS) throw new Unreadable(`a reply has more than ${MAX_REPLY_PARTS} texts, tool calls and results`)
  const answered = new Set(parts.flatMap((part) => ('result' in part ? [part.result.callId] : [])))
  const calls = new Map(parts.flatMap((part) => ('call' in part && answered.has(part.call.call_id) ? [[part.call.call_id, part.call] as const] : [])))
  const steps: ReplyStep[] = []
  let step: ReplyStep = { content: '', thinking: '', calls: [], results: [] }
  const next = () => {
    if (step.results.length) {
      steps.push(step)
      step = { content: '', thinking: '', calls: [], results: [] }
    }
  }
  for (const part of parts) {
    if ('text' in part) {
      next()
      step.content += step.content && part.text ? `\n${part.text}` : part.text
    } else if ('thinking' in part) {
      next()
      step.thinking += step.thinking && part.thinking ? `\n\n${part.thinking}` : part.thinking
    } else if ('call' in part) {
      if (!calls.has(part.call.call_id)) continue
      next()
      step.calls.push(part.call)
    } else {
      const call = calls.get(part.result.callId)
      if (call) step.results.push({ ...part.result, name: call.name })
    }
  }
  if (step.results.length) {
    steps.push(step)
    step = { content: '', thinking: '', calls: [], results: [] }
  }
  return { steps, answer: step }
}

/** A reply that called tools, as the messages this server stores for it: each step's call and results, then the answer (with the reply's own id). */
function replyNodes(reply: SourceNode, { steps, answer }: { steps: ReplyStep[]; answer: ReplyStep }, reasoning: Reasoning | undefined): SourceNode[] {
  const nodes: SourceNode[] = []
  let parent = reply.parent
  const thoughtOf = (step: ReplyStep) => (step.thinking ? { reasoning: { thinking: step.thinking } } : {})
  steps.forEach((step, index) => {
    const callId = `${reply.id}#${index}`
    nodes.push({ ...reply, ...thoughtOf(step), id: callId, parent, keep: true, content: step.content.trim(), tool: { toolCalls: step.calls } })
    parent = callId
    step.results.forEach((result, position) => {
      const resultId = `${callId}.${position}`
      nodes.push({ id: resultId, parent, keep: true, role: 'tool', content: result.content, model: null, status: 'complete', at: reply.at, tool: { callId: result.callId, toolName: result.name } })
      parent = resultId
    })
  })
  const thinking = [reasoning?.thinking, answer.thinking].filter(Boolean).join('\n\n')
  const content = answer.content.trim()
  nodes.push({ ...reply, parent, content, keep: content !== '' || thinking !== '', ...(thinking ? { reasoning: { thinking, thinkingMs: reasoning?.thinkingMs } } : {}) })
  return nodes
}

/** An HTML attribute's value as Open WebUI escapes it. */
const unescapeHtml = (value: string) => value.replace(/&quot;|&#34;|&#39;|&#x27;|&lt;|&gt;|&amp;/g, (entity) => ({ '&quot;': '"', '&#34;': '"', '&#39;': "'", '&#x27;': "'", '&lt;': '<', '&gt;': '>', '&amp;': '&' })[entity]!)

/** A JSON text that may itself hold JSON text (Open WebUI dumps values twice): the value. */
function parsedTwice(value: string): unknown {
  try {
    const once: unknown = JSON.parse(value)
    if (typeof once !== 'string') return once
    try {
      return JSON.parse(once)
    } catch {
      return once
    }
  } catch {
    return value
  }
}

/**
 * Open WebUI keeps a reply's tool calls in its text, each a `<details type="tool_calls" id name
 * arguments result>` block (the values HTML-escaped JSON): read as the reply's parts.
 */
function openWebUiToolBlocks(content: string, replyId: string): ReplyPart[] | undefined {
  if (!content.includes('<details type="tool_calls"')) return undefined
  const parts: ReplyPart[] = []
  let cursor = 0
  let index = 0
  for (const block of content.matchAll(/<details type="tool_calls"([^>]*)>[\s\S]*?<\/details>[ \t]*\n?/g)) {
    parts.push({ text: content.slice(cursor, block.index) })
    cursor = block.index + block[0].length
    const attributes = Object.fromEntries([...block[1]!.matchAll(/\s([a-z_]+)="([^"]*)"/g)].map(([, name, value]) => [name!, unescapeHtml(value!)]))
    const callId = toolText(attributes.id, 100) ? attributes.id : `${replyId.slice(0, 80)}-${index}`
    index++
    const name = toolText(attributes.name, 200) ? attributes.name : 'tool'
    const args = parsedTwice(attributes.arguments ?? '{}')
    const result = parsedTwice(attributes.result ?? '')
    parts.push({ call: { call_id: callId, name, arguments: isObject(args) ? args : { input: args } } })
    if (attributes.done !== 'false') parts.push({ result: { callId, content: typeof result === 'string' ? result : JSON.stringify(result) } })
  }
  parts.push({ text: content.slice(cursor) })
  return parts
}

/** The text of an output item's parts (`output_text`, `input_text`, a reasoning `summary_text`), what stands for each image. */
function outputText(parts: unknown): string {
  if (typeof parts === 'string') return parts
  if (!Array.isArray(parts)) return ''
  return parts.filter(isObject).map((part) => (part.type === 'input_image' || part.type === 'output_image' ? MISSING_IMAGE : text(part.text))).filter(Boolean).join('')
}

/** Open WebUI's newer `output`: the reply as Responses items (message, reasoning, function_call, function_call_output). */
function openWebUiOutput(output: unknown[]): ReplyPart[] {
  if (output.length > MAX_REPLY_PARTS) throw new Unreadable(`a reply has more than ${MAX_REPLY_PARTS} output items`)
  return output.filter(isObject).flatMap((item): ReplyPart[] => {
    if (item.type === 'message') return [{ text: outputText(item.content) }]
    if (item.type === 'reasoning') return [{ thinking: outputText(Array.isArray(item.summary) && item.summary.length ? item.summary : item.content) }]
    if (item.type === 'function_call' && toolText(item.call_id, 100) && toolText(item.name, 200)) {
      const args = typeof item.arguments === 'string' ? parsedTwice(item.arguments) : item.arguments
      return [{ call: { call_id: item.call_id, name: item.name, arguments: isObject(args) ? args : { input: args ?? null } } }]
    }
    if (item.type === 'function_call_output' && toolText(item.call_id, 100)) return [{ result: { callId: item.call_id, content: outputText(item.output) } }]
    return []
  })
}

/** Open WebUI's export entry `{id, chat}` (or the bare `chat`): `history.messages` by id (`parentId`, `timestamp` in seconds), `currentId`. */
function fromOpenWebUi(item: Json, chat: Json): SourceConversation {
  const history = chat.history as Json
  const entries = Object.entries(history.messages as Json)
  limitNodes(entries.length)
  return {
    sourceId: `open-webui:${text(item.id) || text(chat.id) || contentId(item)}`,
    sameAsSession: null,
    title: item.title ?? chat.title,
    createdAt: fromSeconds(item.created_at ?? chat.timestamp),
    updatedAt: fromSeconds(item.updated_at ?? chat.updated_at),
    current: typeof history.currentId === 'string' ? history.currentId : null,
    nodes: entries.flatMap(([id, message]): SourceNode[] => {
      const role = roleOf(isObject(message) ? message.role : null)
      const reply: SourceNode = {
        id,
        parent: isObject(message) && typeof message.parentId === 'string' ? message.parentId : null,
        keep: false,
        role: role ?? 'user',
        content: isObject(message) ? text(message.content) : '',
        model: isObject(message) && role === 'assistant' ? modelOf(message.model) : null,
        status: 'complete',
        at: fromSeconds(isObject(message) ? message.timestamp : null),
      }
      if (role !== 'assistant') return [{ ...reply, keep: role !== null && reply.content.trim() !== '' }]
      if (Array.isArray(message.output) && message.output.length) return replyNodes(reply, replySteps(openWebUiOutput(message.output)), undefined)
      const { content, reasoning } = openWebUiReasoning(reply.content)
      const parts = openWebUiToolBlocks(content, id) ?? [{ text: content }]
      return replyNodes(reply, replySteps(parts), reasoning)
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
  const place = (node: SourceNode, parent: string | null) => {
    parentOf.set(node.id, parent)
    const siblings = children.get(parent)
    if (siblings) siblings.push(node)
    else children.set(parent, [node])
  }
  /** The reply that stands where the file has none between a question and the next (one per question, shared by its follow-ups). */
  const missingReplies = new Map<string, SourceNode>()
  const missingReplyAfter = (parent: SourceNode): string => {
    let reply = missingReplies.get(parent.id)
    if (!reply) {
      reply = { id: `${parent.id}#reply`, parent: parent.id, keep: true, role: 'assistant', content: MISSING_REPLY, model: null, status: 'complete', at: parent.at }
      missingReplies.set(parent.id, reply)
      place(reply, parent.id)
    }
    return reply.id
  }
  for (const node of kept) {
    const parent = nearestKept(node.parent)
    const above = parent === null ? undefined : byId.get(parent)
    // A question never follows a question (or a tool's result) with no reply between.
    place(node, node.role === 'user' && (above?.role === 'user' || above?.role === 'tool') ? missingReplyAfter(above) : parent)
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
      messages.push({ id: node.id, parentId: parent, role: node.role, content: node.content, model: node.model, status: node.status, createdAt: new Date(at).toISOString(), ...(node.images ? { imageTexts: node.images } : {}), ...(node.sources ? { sources: node.sources } : {}), ...node.tool, ...node.reasoning })
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
  limitNodes(messages.length)
  for (const message of messages) {
    if (!message.content.isWellFormed() || message.content.includes('\0')) throw new Unreadable('a message holds a character that cannot be stored (U+0000 or a lone surrogate)')
    const [most, limit] = message.role === 'user' || message.role === 'system' ? [limits.maxMessageChars, 'MAX_MESSAGE_CHARS'] : [IMPORTED_REPLY_MAX_CHARS, 'the limit for an imported reply']
    if (message.content.length > most) throw new Unreadable(`a message of role ${message.role} has ${message.content.length} characters, more than ${limit} (${most})`)
    if (message.toolCalls) {
      const calls = JSON.stringify(message.toolCalls)
      // JSON.stringify escapes a lone surrogate as \udXXX (a pair it writes as is).
      if (/\\u[dD][89a-fA-F]/.test(calls)) throw new Unreadable('a tool call holds a character that cannot be stored (a lone surrogate)')
      if (calls.length > IMPORTED_REPLY_MAX_CHARS) throw new Unreadable(`a reply's tool calls have ${calls.length} characters, more than the limit for an imported reply (${IMPORTED_REPLY_MAX_CHARS})`)
    }
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
