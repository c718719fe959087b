/**
 * A conversation as a file (docs/api.md "Export and import"): every branch as JSON that POST
 * /v1/import reads back, or the active path as Markdown.
 */
import type { Message, Session } from '../store/chat-store.ts'
import type { AttachmentStore } from '../store/attachment-store.ts'
import type { MessageStore } from '../store/message-store.ts'
import { EXPORT_FORMAT } from './import.ts'

const PAGE = 500

/** Every message of the session (`branch`: its active path, or all of them), oldest first, a page at a time. */
async function messagesOf(store: MessageStore & AttachmentStore, sessionId: string, branch: 'active' | 'all'): Promise<Message[]> {
  const messages: Message[] = []
  let after = null
  do {
    const page = await store.listMessages(sessionId, PAGE, after, 'asc', branch)
    messages.push(...page.items)
    after = page.next
  } while (after)
  return messages
}

/** The JSON export of one session: `{format, version, session, current_message_id, messages}`. */
export async function conversationExport(store: MessageStore & AttachmentStore, session: Session) {
  const messages = await messagesOf(store, session.id, 'all')
  const images = await store.imagesOf(messages.filter((message) => message.images?.length).map((message) => message.id), true)
  return {
    format: EXPORT_FORMAT,
    version: 1,
    session: { id: session.id, title: session.title, created_at: session.created_at, updated_at: session.updated_at },
    current_message_id: session.current_message_id,
    messages: messages.map((message) => ({
      id: message.id,
      parent_id: message.parent_id,
      role: message.role,
      content: message.content,
      model: message.model ?? null,
      status: message.status,
      created_at: message.created_at,
      tokens_used: message.tokens_used ?? null,
      // A reasoning model's thinking (docs/api.md "Reasoning"), apart from the text.
      ...(message.thinking !== undefined ? { thinking: message.thinking, thinking_ms: message.thinking_ms ?? null } : {}),
      // A turn with tools (docs/tools.md): the calls on the assistant message, each result's call and tool.
      ...(message.tool_calls ? { tool_calls: message.tool_calls } : {}),
      ...(message.call_id ? { call_id: message.call_id, name: message.name } : {}),
      // What the reply cites (documents' chunks, web pages); an import keeps the web pages.
      ...(message.sources?.length ? { sources: message.sources } : {}),
      // As base64, which POST /v1/import reads back (through the same checks as a chat's images).
      ...(images.has(message.id)
        ? { images: images.get(message.id)!.map(({ media_type, width, height, data }) => ({ media_type, width, height, data: Buffer.from(data).toString('base64') })) }
        : {}),
    })),
  }
}

const SPEAKERS = { system: 'System', user: 'User', assistant: 'Assistant', tool: 'Tool' } as const

/** The active path as Markdown: the title, then each message under a heading naming who said it. */
export async function conversationMarkdown(store: MessageStore & AttachmentStore, session: Session): Promise<string> {
  const messages = await messagesOf(store, session.id, 'active')
  const parts = [`# ${session.title.replace(/\s+/g, ' ')}`]
  for (const message of messages) {
    const who = message.role === 'assistant' && message.model ? `${SPEAKERS.assistant} (${message.model})` : message.role === 'tool' ? `${SPEAKERS.tool} (${message.name})` : SPEAKERS[message.role]
    parts.push(`## ${who}`)
    if (message.thinking) parts.push(`<details><summary>Reasoning</summary>\n\n${message.thinking}\n\n</details>`)
    if (message.content) parts.push(message.content)
    for (const call of message.tool_calls ?? []) parts.push(`*[calls ${call.name} with ${JSON.stringify(call.arguments)}]*`)
    // The bytes stay on the server: the Markdown says what was shown.
    for (const image of message.images ?? []) parts.push(`*[image: ${image.media_type}, ${image.width}×${image.height}]*`)
  }
  return `${parts.join('\n\n')}\n`
}

/** `Content-Disposition` for a download named after `title` (ASCII fallback, UTF-8 name as RFC 6266 allows). */
export function attachment(title: string, extension: string): string {
  const base = title.normalize('NFKD').replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'chat'
  // RFC 5987's attr-char has no ' ( ) * !, which encodeURIComponent leaves as they are.
  const encoded = encodeURIComponent(`${[...title].slice(0, 60).join('')}.${extension}`).replace(/['()*!]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${base}.${extension}"; filename*=UTF-8''${encoded}`
}
