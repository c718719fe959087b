import * as v from 'valibot'
import type { Principal } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import { randomUUID } from 'node:crypto'
import { contentOf, contentText, functionCallItemId, newId, parseArguments, reasoningItemId, unsupported } from './wire.ts'
import { attachmentUrl } from '../images/attachments.ts'
import { imagesForModel, type ImageSource } from '../images/image-input.ts'
import type { ChatMessage } from '../ollama/client.ts'
import type { FunctionCall, InputItem, InputMessage, StoredResponse } from '../store/response-store.ts'
import { characterCount, parseAt, withinChars } from '../http/validate.ts'
import { TOOL_SEPARATOR } from '../tools/mcp-hub.ts'
import { cumulativeEnds, segmentsOf, textOf } from './response-output.ts'

/**
 * The input items of OpenAI's Responses and Conversations: checked one by one (so an error
 * names the item and the field), bounded (MAX_INPUT_ITEMS, MAX_MESSAGE_CHARS), references to
 * the caller's stored items resolved, and turned into Ollama's messages.
 */

const Text = v.pipe(v.string(), v.check((text) => text.isWellFormed(), 'must be well-formed Unicode (it has a lone surrogate)'))
const Content = v.union([Text, v.array(v.looseObject({ type: v.string() }))], 'must be a string or an array of content parts')
const Name = v.pipe(v.string(), v.nonEmpty('must not be empty'), v.maxLength(200, 'must be at most 200 characters'))

const ITEM_SCHEMAS = {
  message: v.looseObject({ role: v.picklist(['user', 'system', 'developer', 'assistant'], 'must be user, system, developer or assistant'), content: Content }),
  item_reference: v.looseObject({ id: Name }),
  function_call: v.looseObject({ call_id: Name, name: Name, arguments: Text }),
  function_call_output: v.looseObject({ call_id: Name, output: Content }),
  mcp_approval_response: v.looseObject({ approval_request_id: Name, approve: v.boolean('must be true or false') }),
  // As a Response's output has it (content of reasoning_text parts); a summary-only item (OpenAI's own models) has no text.
  reasoning: v.looseObject({ content: v.optional(v.nullable(v.array(v.looseObject({ type: v.literal('reasoning_text'), text: Text })))) }),
  // An earlier response's output sent back as input: the search ran then; its sources are not sent again.
  file_search_call: v.looseObject({ id: Name }),
  // The same for the built-in tools' calls: they ran then.
  web_search_call: v.looseObject({ id: Name }),
  code_interpreter_call: v.looseObject({ id: Name }),
}
export type ItemType = keyof typeof ITEM_SCHEMAS

/** A message as the client sent it: its images not yet read (preparedInput does). */
type SentMessage = InputMessage & { imageSources?: ImageSource[] }
/** An item as the client sent it, checked; references not yet resolved. */
type SentItem = SentMessage | Exclude<InputItem, InputMessage> | { type: 'item_reference'; id: string }
/** Items with their references resolved; their images not yet read. */
type ResolvedItem = Exclude<SentItem, { type: 'item_reference' }>

export interface InputLimits {
  maxInputItems: number
  maxMessageChars: number
}

/**
 * Checks `input` (a string, or an array of items of the `allowed` types) at `path`; 400 naming
 * the item and field when one is wrong, too long, or of a type not taken here.
 */
export function parseInputItems(input: unknown, limits: InputLimits, path: string, allowed: readonly ItemType[], images = false): SentItem[] {
  if (typeof input === 'string') return [{ id: newId('msg'), role: 'user', text: boundedText(input, limits, path) }]
  if (!Array.isArray(input) || input.length === 0) throw unsupported(path, `${path} must be a non-empty string or a non-empty array of items.`)
  if (input.length > limits.maxInputItems) throw unsupported(path, `${path} has ${input.length} items; at most ${limits.maxInputItems} are taken (MAX_INPUT_ITEMS).`)
  return input.flatMap((item: unknown, index): SentItem[] => {
    const at = `${path}[${index}]`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw unsupported(at, `${at} must be an object.`)
    const type = (item as { type?: unknown }).type ?? 'message'
    if (!allowed.includes(type as ItemType)) {
      throw unsupported(`${at}.type`, `${at}.type: items of type ${JSON.stringify(String(type).slice(0, 64))} are not supported here; send ${allowed.join(', ')} items.`)
    }
    switch (type as ItemType) {
      case 'message': {
        const message = parseAt(ITEM_SCHEMAS.message, item, at)
        const content = images
          ? contentOf(message.content, `${at}.content`, message.role === 'user')
          : contentOf(message.content, `${at}.content`, false, 'images are taken in the input of POST /v1/responses, not as conversation items.')
        const text = boundedText(content.text, limits, `${at}.content`)
        return [{ id: newId('msg'), role: message.role, text, ...(content.images.length ? { imageSources: content.images } : {}) }]
      }
      case 'item_reference':
        return [{ type: 'item_reference', id: parseAt(ITEM_SCHEMAS.item_reference, item, at).id }]
      case 'function_call': {
        const call = parseAt(ITEM_SCHEMAS.function_call, item, at)
        const args = boundedText(call.arguments, limits, `${at}.arguments`)
        parseArguments(args, `${at}.arguments`)
        return [{ type: 'function_call', id: newId('fc'), call_id: call.call_id, name: call.name, arguments: args }]
      }
      case 'function_call_output': {
        const output = parseAt(ITEM_SCHEMAS.function_call_output, item, at)
        return [{ type: 'function_call_output', id: newId('fco'), call_id: output.call_id, output: boundedText(contentText(output.output, `${at}.output`), limits, `${at}.output`) }]
      }
      case 'mcp_approval_response': {
        const answer = parseAt(ITEM_SCHEMAS.mcp_approval_response, item, at)
        return [{ type: 'mcp_approval_response', id: newId('mcpa'), approval_request_id: answer.approval_request_id, approve: answer.approve }]
      }
      case 'reasoning': {
        const reasoning = parseAt(ITEM_SCHEMAS.reasoning, item, at)
        const text = (reasoning.content ?? []).map((part) => part.text).join('')
        return [{ type: 'reasoning', id: newId('rs'), text: boundedText(text, limits, `${at}.content`) }]
      }
      case 'file_search_call':
      case 'web_search_call':
      case 'code_interpreter_call':
        parseAt(ITEM_SCHEMAS[type as 'file_search_call'], item, at)
        return []
    }
  })
}

/** A text to store: within MAX_MESSAGE_CHARS, and well-formed (a lone surrogate would come back changed); else 400 naming `path`. */
export function boundedText(text: string, limits: InputLimits, path: string): string {
  if (!text.isWellFormed()) throw unsupported(path, `${path} must be well-formed Unicode (it has a lone surrogate).`)
  if (!withinChars(text, limits.maxMessageChars)) {
    throw unsupported(path, `${path} has ${characterCount(text)} characters; at most ${limits.maxMessageChars} are taken (MAX_MESSAGE_CHARS).`)
  }
  return text
}

/** Messages only, such as conversation items; stored as messages. */
export function parseMessages(input: unknown, limits: InputLimits, path: string): InputMessage[] {
  return parseInputItems(input, limits, path, ['message']) as InputMessage[]
}

const messageHexOf = (id: string) => /^msg_([0-9a-f]{32})$/.exec(id)?.[1]

/**
 * Replaces each `item_reference` with a copy of the caller's item it names: a response's output
 * message (`msg_…`) or function call (`fc_…`), or a conversation's message. A reference to
 * anything else, another user's items included, is a 400 naming it.
 */
export async function resolveReferences(app: AppContext, principal: Principal, items: SentItem[], path: string): Promise<ResolvedItem[]> {
  const resolved: ResolvedItem[] = []
  for (const [index, item] of items.entries()) {
    if (item.type !== 'item_reference') {
      resolved.push(item)
      continue
    }
    const found = await referencedItem(app, principal, item.id)
    if (!found) throw unsupported(`${path}[${index}].id`, `${path}[${index}].id: no item with id '${item.id}' was found.`)
    resolved.push(found)
  }
  return resolved
}

async function referencedItem(app: AppContext, principal: Principal, id: string): Promise<InputItem | undefined> {
  const call = /^fc_([0-9a-f]{32})_(\d{1,4})$/.exec(id)
  if (call) {
    const made = (await app.responses.store.get(`resp_${call[1]}`, principal.userId))?.tool_calls[Number(call[2])]
    return made && { type: 'function_call', id, ...made }
  }
  const hex = messageHexOf(id)
  if (!hex) return undefined
  const response = await app.responses.store.get(`resp_${hex}`, principal.userId)
  if (response) return { id, role: 'assistant', text: response.output_text }
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  const message = await app.store.getOwnedMessage(uuid, principal.userId)
  // A tool result is not a message an input can name.
  return message && message.role !== 'tool' ? { id, role: message.role, text: message.content } : undefined
}

export const isMessage = (item: { type?: string }): item is InputMessage => item.type === undefined || item.type === 'message'

/**
 * The input with its images read, checked and re-encoded (docs/images.md), each with the id it
 * is stored under; 400 model_capability when there are images and `model` does not see.
 */
export async function preparedInput(app: AppContext, model: string, items: ResolvedItem[], path: string): Promise<InputItem[]> {
  const groups = items.map((item, index) => ({ path: `${path}[${index}].content`, sources: isMessage(item) ? (item as SentMessage).imageSources ?? [] : [] }))
  const prepared = await imagesForModel(app, model, groups)
  return items.map((item, index) => {
    if (!isMessage(item)) return item
    const { imageSources: _, ...message } = item as SentMessage
    const images = prepared[index]!.map((image) => ({ id: randomUUID(), media_type: image.mediaType, width: image.width, height: image.height, bytes: image.data.byteLength, data: image.data }))
    return images.length ? { ...message, images } : message
  })
}

/** A message of a previous_response_id chain for Ollama: a stored image is named until it is sent (withChainImages reads it). */
export type ChainMessage = ChatMessage & { imageIds?: string[] }

/** `message` with the bytes of its stored images, read from the attachments table (`ownerId`'s). */
export async function withChainImages(app: AppContext, ownerId: string, message: ChainMessage): Promise<ChatMessage> {
  const { imageIds, ...sent } = message
  if (!imageIds?.length) return sent
  const read = await Promise.all(imageIds.map(async (id) => (await app.store.getAttachment(id, ownerId))?.data))
  const images = [...(sent.images ?? []), ...read.filter((data): data is Uint8Array => data !== undefined)]
  return images.length ? { ...sent, images } : sent
}

/** Whether items need more than a conversation's session can hold (it stores messages; reasoning sent back is dropped). */
export const hasFunctionItems = (items: InputItem[]) => items.some((item) => !isMessage(item) && item.type !== 'reasoning')

/**
 * Ollama's messages for input items and earlier outputs, in order: developer as system, function
 * calls as an assistant message's `tool_calls` (consecutive ones together), their outputs as
 * `tool` messages named after the call they answer. Reasoning goes back with the function calls
 * it led to within the turn in progress (after the last user message), else nowhere: earlier
 * turns' reasoning is not sent, as Ollama and the model makers advise.
 */
export function toOllamaChat(items: InputItem[]): ChainMessage[] {
  const messages: ChainMessage[] = []
  const names = new Map<string, string>()
  const turnStart = items.findLastIndex((item) => isMessage(item) && item.role === 'user')
  let thinking = ''
  for (const [index, item] of items.entries()) {
    if (item.type === 'reasoning') {
      if (index > turnStart) thinking += item.text
      continue
    }
    if (item.type === 'function_call') {
      names.set(item.call_id, item.name)
      // Checked to be a JSON object when it came in (parseInputItems), or made by JSON.stringify.
      const call = { function: { name: item.name, arguments: JSON.parse(item.arguments || '{}') as Record<string, unknown> } }
      // The calls of one turn belong to its assistant message, after any text it had.
      const last = messages.at(-1)
      if (last?.role === 'assistant') (last.tool_calls ??= []).push(call)
      else messages.push({ role: 'assistant', content: '', tool_calls: [call] })
      if (thinking) messages.at(-1)!.thinking = (messages.at(-1)!.thinking ?? '') + thinking
      thinking = ''
    } else if (item.type === 'function_call_output') {
      const name = names.get(item.call_id)
      messages.push({ role: 'tool', content: item.output, ...(name ? { tool_name: name } : {}) })
    } else if (item.type === 'mcp_approval_response') {
      // The call's result follows as the output the answer led to (lib/openai/mcp-tools.ts).
      continue
    } else {
      // Images in memory (this response's input) go as they are; stored ones by id, read if sent.
      const images = (item.images ?? []).flatMap((image) => (image.data ? [image.data] : []))
      const imageIds = (item.images ?? []).flatMap((image) => (image.data ? [] : [image.id]))
      messages.push({ role: item.role === 'developer' ? 'system' : item.role, content: item.text, ...(images.length ? { images } : {}), ...(imageIds.length ? { imageIds } : {}) })
    }
  }
  return messages
}

/**
 * An earlier response as input items: what it was given, then what it answered, in the order it
 * happened: its messages, its MCP calls with their results (docs/tools.md; a call made on
 * approval answers a request of an earlier response, which holds the call) and the calls waiting
 * for approval, then its function calls.
 */
export function itemsOfResponse(response: StoredResponse): InputItem[] {
  const ends = cumulativeEnds(response.deltas)
  const callOf = (item: { id: string; call_id: string; server_label: string; name: string; arguments: string }): InputItem =>
    ({ type: 'function_call', id: item.id, call_id: item.call_id, name: `${item.server_label}${TOOL_SEPARATOR}${item.name}`, arguments: item.arguments })
  return [
    ...response.input,
    ...segmentsOf(response).flatMap((segment): InputItem[] => {
      // Kept with the chain; sent to Ollama only within the turn in progress (toOllamaChat).
      if (segment.kind === 'reasoning') return [{ type: 'reasoning', id: reasoningItemId(response.id), text: response.reasoning!.text }]
      if (segment.kind === 'message') {
        const text = textOf(response, segment, ends)
        return text ? [{ id: '', role: 'assistant', text }] : []
      }
      const { item } = segment
      if (item.type === 'mcp_approval_request') return [callOf(item)]
      // A built-in tool's call: the model reads it again as it did (its name, arguments and result).
      if (item.type === 'web_search_call' || item.type === 'code_interpreter_call') {
        return [{ type: 'function_call', id: item.id, call_id: item.call_id, name: item.name, arguments: item.arguments }, { type: 'function_call_output', id: `${item.id}_output`, call_id: item.call_id, output: item.output }]
      }
      if (item.type !== 'mcp_call') return []
      return [...(item.approval_request_id ? [] : [callOf(item)]), { type: 'function_call_output', id: item.id, call_id: item.call_id, output: item.output ?? item.error ?? '' }]
    }),
    ...response.tool_calls.map((call, index) => ({ type: 'function_call' as const, id: functionCallItemId(response.id, index), ...call })),
  ]
}

/** An input item as OpenAI's API shows it. */
export function inputItemObject(item: InputItem) {
  if (item.type === 'function_call') return { id: item.id, type: 'function_call', call_id: item.call_id, name: item.name, arguments: item.arguments, status: 'completed' }
  if (item.type === 'function_call_output') return { id: item.id, type: 'function_call_output', call_id: item.call_id, output: item.output, status: 'completed' }
  if (item.type === 'mcp_approval_response') return { id: item.id, type: 'mcp_approval_response', approval_request_id: item.approval_request_id, approve: item.approve }
  if (item.type === 'reasoning') return { id: item.id, type: 'reasoning', summary: [], content: [{ type: 'reasoning_text', text: item.text }] }
  const part = item.role === 'assistant' ? { type: 'output_text', text: item.text, annotations: [], logprobs: [] } : { type: 'input_text', text: item.text }
  // An image as OpenAI lists one, its URL the stored bytes' (its owner's only).
  const images = (item.images ?? []).map((image) => ({ type: 'input_image', image_url: attachmentUrl(image.id), detail: 'auto' }))
  return { id: item.id, type: 'message', role: item.role, status: 'completed', content: [part, ...images] }
}
