import * as v from 'valibot'
import type { Principal } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import { unixSeconds } from './wire.ts'
import { HttpProblem } from '../shared/problem.ts'
import { conversationIdOf } from './response-run.ts'
import { parseMessages, type InputLimits } from './response-input.ts'
import { conversationSession } from './responses.ts'
import type { ConversationMessage, Message } from '../store/chat-store.ts'
import { attachmentUrl } from '../images/attachments.ts'

/**
 * OpenAI's Conversations over this server's sessions: a conversation is a session (`conv_` and
 * the UUID's hex), its items are the session's messages (`msg_` and the message UUID's hex).
 */

export const Metadata = v.pipe(
  v.record(v.string(), v.pipe(v.string(), v.maxLength(512))),
  v.check((record) => Object.keys(record).length <= 16, 'at most 16 keys'),
)

/** Items to add, checked one by one by itemsAsMessages. */
export const NewItems = v.pipe(v.array(v.unknown()), v.maxLength(20, 'at most 20 items at a time'))

export const itemIdOf = (messageId: string) => `msg_${messageId.replaceAll('-', '')}`

/** The message UUID of an item id, or undefined for anything that is not one. */
export function messageIdOf(itemId: string): string | undefined {
  const hex = /^msg_([0-9a-f]{32})$/.exec(itemId)?.[1]
  return hex && `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export async function conversationObject(app: AppContext, sessionId: string, createdAt: string) {
  return { id: conversationIdOf(sessionId), object: 'conversation', created_at: unixSeconds(createdAt), metadata: await app.store.sessionMetadata(sessionId) }
}

export function itemOf(message: Message) {
  // A tool's result (docs/tools.md) is the output of the call it answers; the message that made
  // the calls is listed with its text.
  if (message.role === 'tool') {
    return { id: itemIdOf(message.id), type: 'function_call_output', call_id: message.call_id, output: message.content, status: message.status === 'complete' ? 'completed' : 'incomplete' }
  }
  return {
    id: itemIdOf(message.id),
    type: 'message',
    role: message.role,
    status: message.status === 'streaming' ? 'in_progress' : message.status === 'complete' ? 'completed' : 'incomplete',
    content: [
      message.role === 'assistant' ? { type: 'output_text', text: message.content, annotations: [], logprobs: [] } : { type: 'input_text', text: message.content },
      ...(message.images ?? []).map((image) => ({ type: 'input_image', image_url: attachmentUrl(image.id), detail: 'auto' })),
    ],
  }
}

/** Input items (messages only, each within MAX_MESSAGE_CHARS) as session messages: developer as system. */
export function itemsAsMessages(items: unknown[], limits: InputLimits): ConversationMessage[] {
  if (items.length === 0) return []
  return parseMessages(items, limits, 'items').map(({ role, text }) => ({ role: role === 'developer' ? 'system' : role, content: text }))
}

/** The principal's conversation and its session, or 404 as OpenAI says it. */
export async function ownedConversation(app: AppContext, principal: Principal, conversationId: string) {
  const sessionId = await conversationSession(app, principal, conversationId)
  return { sessionId, session: (await app.store.getSession(sessionId, principal.userId))! }
}

/** A message of the conversation, or 404. */
export async function ownedItem(app: AppContext, sessionId: string, itemId: string) {
  const messageId = messageIdOf(itemId)
  const message = messageId && (await app.store.getSessionMessage(sessionId, messageId))
  if (!message) throw new HttpProblem(404, 'not_found', `Item with id '${itemId}' not found.`)
  return { ...message, images: (await app.store.imagesOf([message.id])).get(message.id) ?? [] }
}
