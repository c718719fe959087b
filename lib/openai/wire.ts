import { randomUUID } from 'node:crypto'
import type { ChatResponse, Tool } from 'ollama'
import * as v from 'valibot'
import type { ImageSource } from '../images/image-input.ts'
import type { ChatMessage } from '../ollama/client.ts'
import type { Think } from '../shared/chat-options.ts'
import type { FunctionCall } from '../store/response-store.ts'
import { HttpProblem } from '../shared/problem.ts'

/**
 * What the OpenAI-compatible routes share: OpenAI's error shape, ids, and the mapping of
 * messages, tools and options between OpenAI's wire format and Ollama's.
 */

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  409: 'conflict_error',
  413: 'invalid_request_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
}

/** OpenAI's `{"error": {message, type, param, code}}` for a problem: the status is kept, so the SDKs raise the right class. */
export function openAIErrorBody(problem: HttpProblem): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return {
    error: {
      message: problem.detail,
      type: ERROR_TYPES[problem.status] ?? (problem.status >= 500 ? 'api_error' : 'invalid_request_error'),
      param: problem.param ?? null,
      code: problem.kind,
    },
  }
}

export function openAIErrorResponse(problem: HttpProblem): Response {
  return Response.json(openAIErrorBody(problem), { status: problem.status, headers: problem.headers })
}

/** A 400 for a field or value this server does not support, naming it as OpenAI's `param`. */
export function unsupported(param: string, detail: string): HttpProblem {
  return new HttpProblem(400, 'validation', detail, { param })
}

/** OpenAI's list page: `data`, the first and last ids, and whether more follow. */
export function openAIList<T extends { id: string }>(data: T[], hasMore: boolean) {
  // The ids are strings or absent, never null (OpenAI's schema).
  return { object: 'list', data, ...(data.length ? { first_id: data[0]!.id, last_id: data.at(-1)!.id } : {}), has_more: hasMore }
}

/** A model as OpenAI's `GET /v1/models` lists it. */
export function openAIModel(model: { name: string; modified_at: Date | string }) {
  return {
    id: model.name,
    object: 'model',
    created: unixSeconds(String(model.modified_at)),
    owned_by: model.name.includes('/') ? model.name.slice(0, model.name.indexOf('/')) : 'library',
  }
}

// randomUUID draws from a pool: one syscall per many ids, where a thousand input items each need one.
export const newId = (prefix: string) => `${prefix}_${randomUUID().replaceAll('-', '')}`

/** A function call of a response's output: `fc_<response hex>_<index>`. */
export const functionCallItemId = (responseId: string, index: number) => `fc_${responseId.slice(responseId.indexOf('_') + 1)}_${index}`

/** A call of the model's, with the id the client answers it by. */
export const newFunctionCall = (name: string, args: Record<string, unknown> | undefined): FunctionCall => ({
  call_id: newId('call'),
  name,
  arguments: JSON.stringify(args ?? {}),
})

/** A response's reasoning item: `rs_` and the response's hex. */
export const reasoningItemId = (responseId: string) => `rs_${responseId.slice(responseId.indexOf('_') + 1)}`

export const unixSeconds = (time: number | string = Date.now()) => Math.floor((typeof time === 'string' ? Date.parse(time) : time) / 1000)

// ---------------------------------------------------------------- request shapes (unknown fields ignored)

const Content = v.union([v.string(), v.array(v.looseObject({ type: v.string() })), v.null()])

const ToolCall = v.looseObject({
  id: v.string(),
  type: v.optional(v.literal('function')),
  function: v.looseObject({ name: v.string(), arguments: v.string() }),
})

export const ChatCompletionMessage = v.variant('role', [
  v.looseObject({ role: v.picklist(['system', 'developer', 'user']), content: Content }),
  v.looseObject({
    role: v.literal('assistant'),
    content: v.optional(Content),
    tool_calls: v.optional(v.array(ToolCall)),
    // A reasoning model's thinking, as Ollama's OpenAI layer (`reasoning`) and DeepSeek's (`reasoning_content`) name it.
    reasoning: v.optional(v.nullable(v.string())),
    reasoning_content: v.optional(v.nullable(v.string())),
  }),
  v.looseObject({ role: v.literal('tool'), content: Content, tool_call_id: v.string() }),
])
export type ChatCompletionMessage = v.InferOutput<typeof ChatCompletionMessage>

export const FunctionTool = v.looseObject({
  type: v.literal('function'),
  function: v.looseObject({ name: v.pipe(v.string(), v.nonEmpty()), description: v.optional(v.string()), parameters: v.optional(v.record(v.string(), v.unknown())) }),
})
export type FunctionTool = v.InferOutput<typeof FunctionTool>

/** OpenAI's `reasoning_effort` (and `reasoning.effort`): the levels clients send. */
export const ReasoningEffort = v.optional(v.nullable(v.picklist(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'], 'must be one of none, minimal, low, medium, high, xhigh, max')))

/** `think` for a reasoning effort, as Ollama's OpenAI layer maps it: none and minimal turn thinking off; above high is high. */
export function thinkOfEffort(effort: v.InferOutput<typeof ReasoningEffort>): Think | undefined {
  if (effort == null) return undefined
  if (effort === 'none' || effort === 'minimal') return false
  return effort === 'low' || effort === 'medium' ? effort : 'high'
}

export const ResponseFormat = v.variant('type', [
  v.looseObject({ type: v.literal('text') }),
  v.looseObject({ type: v.literal('json_object') }),
  v.looseObject({ type: v.literal('json_schema'), json_schema: v.looseObject({ name: v.optional(v.string()), schema: v.record(v.string(), v.unknown()) }) }),
])

/** The image a content part carries: Chat Completions' `image_url` ({url} or a string) or Responses' `input_image`. */
function imageOfPart(part: Record<string, unknown>, param: string): ImageSource | undefined {
  if (part.type === 'image_url') {
    const url = part.image_url
    return typeof url === 'object' && url !== null ? { text: (url as { url?: unknown }).url, path: `${param}.image_url.url` } : { text: url, path: `${param}.image_url` }
  }
  if (part.type === 'input_image') {
    if (part.image_url === undefined && part.file_id !== undefined) throw unsupported(`${param}.file_id`, `${param}.file_id: files are not stored here; send the image itself as a data URL in image_url.`)
    return { text: part.image_url, path: `${param}.image_url` }
  }
  return undefined
}

/**
 * A message's content: its text (a string, or its text parts joined) and, where `images` is
 * true, the images of its image parts. Other parts are refused, naming them.
 */
export function contentOf(content: unknown, param: string, images: boolean, imagesElsewhere = 'images are taken in user messages only.'): { text: string; images: ImageSource[] } {
  if (content === null || content === undefined) return { text: '', images: [] }
  if (typeof content === 'string') return { text: content, images: [] }
  const texts: string[] = []
  const found: ImageSource[] = []
  for (const [index, part] of (content as Array<Record<string, unknown>>).entries()) {
    const at = `${param}[${index}]`
    if (part.type === 'text' || part.type === 'input_text' || part.type === 'output_text') {
      const parsed = v.safeParse(v.looseObject({ text: v.string() }), part)
      if (parsed.success) {
        texts.push(parsed.output.text)
        continue
      }
    }
    const image = imageOfPart(part, at)
    if (image && images) {
      found.push(image)
      continue
    }
    throw unsupported(at, image ? `${at}: ${imagesElsewhere}` : `Content parts of type "${String(part.type)}" are not supported here; send text${images ? ' or images' : ''}.`)
  }
  return { text: texts.join(''), images: found }
}

/** The text of a message's content: a string, or its text parts joined. Other parts are refused. */
export function contentText(content: unknown, param: string): string {
  return contentOf(content, param, false).text
}

/** A message for Ollama whose images are still as sent (lib/images/image-input.ts imagesForModel prepares them). */
export type ChatMessageWithImages = ChatMessage & { imageSources?: ImageSource[] }

/**
 * OpenAI chat messages as Ollama's: developer as system, tool-call arguments as objects, tool
 * results named, a user's images kept. An assistant's reasoning is sent back only within the turn
 * in progress (after the last user message: its tool steps), as Ollama and the model makers advise.
 */
export function toOllamaMessages(messages: ChatCompletionMessage[]): ChatMessageWithImages[] {
  const toolNames = new Map<string, string>()
  const turnStart = messages.findLastIndex((message) => message.role === 'user')
  return messages.map((message, index) => {
    const { text: content, images } = contentOf(message.content, `messages[${index}].content`, message.role === 'user')
    if (images.length) return { role: 'user', content, imageSources: images }
    if (message.role === 'assistant') {
      const calls = (message.tool_calls ?? []).map((call, callIndex) => {
        toolNames.set(call.id, call.function.name)
        return { function: { name: call.function.name, arguments: parseArguments(call.function.arguments, `messages[${index}].tool_calls[${callIndex}].function.arguments`) } }
      })
      const thinking = index > turnStart ? (message.reasoning_content ?? message.reasoning) : undefined
      return { role: 'assistant', content, ...(thinking ? { thinking } : {}), ...(calls.length ? { tool_calls: calls } : {}) }
    }
    if (message.role === 'tool') {
      const name = toolNames.get(message.tool_call_id)
      return { role: 'tool', content, ...(name ? { tool_name: name } : {}) }
    }
    return { role: message.role === 'developer' ? 'system' : message.role, content }
  })
}

/** Tool call arguments as the object Ollama wants; 400 naming `param` when the text is not a JSON object. */
export function parseArguments(text: string, param: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text || '{}')
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>
  } catch {}
  throw unsupported(param, 'Tool call arguments must be a JSON object, as a string.')
}

export function toOllamaTools(tools: FunctionTool[]): Tool[] {
  return tools.map(({ function: fn }) => ({
    type: 'function',
    function: { name: fn.name, ...(fn.description ? { description: fn.description } : {}), parameters: (fn.parameters ?? { type: 'object', properties: {} }) as Tool['function']['parameters'] },
  }))
}

export function toOllamaFormat(format: v.InferOutput<typeof ResponseFormat> | undefined): 'json' | Record<string, unknown> | undefined {
  if (!format || format.type === 'text') return undefined
  return format.type === 'json_object' ? 'json' : format.json_schema.schema
}

/** OpenAI tool calls (arguments as JSON strings) from an Ollama chunk's. */
export function openAIToolCalls(chunk: ChatResponse): Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> {
  return (chunk.message?.tool_calls ?? []).map((call) => ({
    id: (call as { id?: string }).id || newId('call'),
    type: 'function' as const,
    function: { name: call.function.name, arguments: JSON.stringify(call.function.arguments ?? {}) },
  }))
}

/** OpenAI's finish_reason from how Ollama ended. */
export function finishReason(doneReason: string | undefined, madeToolCalls: boolean): 'stop' | 'length' | 'tool_calls' {
  if (doneReason === 'length') return 'length'
  return madeToolCalls ? 'tool_calls' : 'stop'
}
