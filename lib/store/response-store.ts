import type { ImageInfo, WebSource } from './chat-store.ts'

/** OpenAI's Responses as stored: the types, and the interface every store backend implements. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled'

/** An input message as stored: its role and text (stored items without a `type` are messages), and a user's images. */
export interface InputMessage {
  type?: 'message'
  id: string
  role: 'user' | 'system' | 'developer' | 'assistant'
  text: string
  /** Listed here; their bytes are in the attachments table (with the response), and in `data` while in memory. */
  images?: InputImage[]
}

export interface InputImage extends ImageInfo {
  data?: Uint8Array
}

/** A tool call the model made, as the client sends it back (or as a response's output holds it). */
export interface FunctionCall {
  call_id: string
  name: string
  /** JSON text, as OpenAI sends arguments. */
  arguments: string
}

/**
 * One input item as stored: a message, a function call, a function call's output, the answer to an
 * MCP approval request, or a reasoning item a client sent back (its text).
 */
export type InputItem =
  | InputMessage
  | (FunctionCall & { type: 'function_call'; id: string })
  | { type: 'function_call_output'; id: string; call_id: string; output: string }
  | McpApprovalResponse
  | { type: 'reasoning'; id: string; text: string }

/**
 * A response's reasoning (docs/openai.md "Reasoning"): what a reasoning model thought before its
 * first output, its deltas' lengths (one `response.reasoning_text.delta` each), and its place in
 * the output: how many MCP items came before it.
 */
export interface ResponseReasoning {
  text: string
  deltas: number[]
  at: number
}

/** A client's answer to an `mcp_approval_request` of an earlier response (docs/tools.md). */
export interface McpApprovalResponse {
  type: 'mcp_approval_response'
  id: string
  approval_request_id: string
  approve: boolean
}

/**
 * An output item of a tool this server runs (the `mcp` tool type, docs/tools.md; `file_search`,
 * docs/documents.md), as OpenAI shows it, with what is ours (not shown): `at`, how many text
 * deltas came before it (its place in the output), and for calls the id the model's history
 * knows them by. A file search keeps its results whole: they are shown when `include` asks.
 */
export type ServerToolItem = { at: number } & (
  | { type: 'mcp_list_tools'; id: string; server_label: string; tools: Array<{ name: string; description: string; input_schema: Record<string, unknown>; annotations: null }>; error: null }
  | { type: 'mcp_call'; id: string; call_id: string; server_label: string; name: string; arguments: string; output: string | null; error: string | null; approval_request_id: string | null }
  | { type: 'mcp_approval_request'; id: string; call_id: string; server_label: string; name: string; arguments: string }
  | { type: 'file_search_call'; id: string; queries: string[]; results: FileSearchResult[] }
  // The built-in tools' calls (docs/builtin-tools.md): what the model read (`output`) goes back with a later response of the chain.
  | { type: 'web_search_call'; id: string; call_id: string; name: string; arguments: string; action: { type: 'search'; query: string } | { type: 'open_page'; url: string }; sources: WebSource[]; output: string; ok: boolean }
  | { type: 'code_interpreter_call'; id: string; call_id: string; name: string; arguments: string; code: string; output: string; ok: boolean }
)

/** A chunk a file search gave the model, as OpenAI's `file_search_call.results` list it; the n-th is source [n]. */
export interface FileSearchResult {
  file_id: string
  filename: string
  score: number
  text: string
  attributes: Record<string, string | number>
}

/** What a response was asked with, echoed back in its object. */
export interface ResponseParams {
  max_output_tokens: number | null
  temperature: number | null
  top_p: number | null
  metadata: Record<string, string>
  text_format: Record<string, unknown>
  store: boolean
  /** Function tools offered, echoed as sent (absent on responses stored before tools). */
  tools?: Array<Record<string, unknown>>
  /** "auto", "none", "required", or the function it forced (`{type: "function", name}`). */
  tool_choice?: 'auto' | 'none' | 'required' | { type: 'function'; name: string }
  /** OpenAI's `truncation` (absent on responses stored before it: `disabled`). */
  truncation?: 'auto' | 'disabled'
  /** `reasoning.effort` as asked (absent on responses stored before it, or when not asked). */
  reasoning_effort?: string
  /** With `auto` along a previous_response_id chain: the first message of the chain it sent (docs/long-conversations.md). */
  context_cut?: number
  /** OpenAI's `include` as asked (absent when not asked): `file_search_call.results` shows a file search's results. */
  include?: string[]
}

export interface StoredResponse {
  id: string
  owner_id: string
  session_id: string | null
  previous_response_id: string | null
  model: string
  instructions: string | null
  status: ResponseStatus
  background: boolean
  input: InputItem[]
  output_text: string
  /** The function calls the model made, after its text. */
  tool_calls: FunctionCall[]
  /** The items of the tools this server runs (MCP, file search); the column keeps its first name. */
  mcp_items: ServerToolItem[]
  deltas: number[]
  /** Its reasoning item, when the model thought before its first output. */
  reasoning: ResponseReasoning | null
  usage: { input_tokens: number; output_tokens: number } | null
  incomplete_reason: string | null
  error: { code: string; message: string } | null
  params: ResponseParams
  created_at: string
  completed_at: string | null
}

/** The end of a response, as it is written once. */
export interface ResponseEnd {
  status: Exclude<ResponseStatus, 'queued' | 'in_progress'>
  outputText: string
  deltas: number[]
  toolCalls: FunctionCall[]
  mcpItems: ServerToolItem[]
  reasoning: ResponseReasoning | null
  usage: StoredResponse['usage']
  incompleteReason: string | null
  error: StoredResponse['error']
}

/** The interface every store backend implements. */
export interface ResponseStore {
  /** Stores a new response and what it was asked, in one transaction (migrations/011: the request in a table of its own). */
  insert(response: Pick<StoredResponse, 'id' | 'owner_id' | 'session_id' | 'previous_response_id' | 'model' | 'instructions' | 'status' | 'background' | 'input' | 'params' | 'created_at'>): Promise<void>
  /** The response when it exists and belongs to `ownerId`; someone else's is as absent as a missing one. */
  get(id: string, ownerId: string): Promise<StoredResponse | undefined>
  markStarted(id: string): Promise<void>
  /** Saves a running response's text, its MCP items and its reasoning so far. */
  checkpoint(id: string, text: string, deltas: number[], mcpItems: ServerToolItem[], reasoning: ResponseReasoning | null): Promise<boolean>
  /** Writes the end; false when the response is no longer running (deleted, or ended already). */
  finish(id: string, end: ResponseEnd): Promise<boolean>
  delete(id: string, ownerId: string): Promise<boolean>
  /**
   * The conversation a response continues, oldest first: each earlier response's input and output
   * along the previous_response_id chain, all of `ownerId`'s. A chain from an older response
   * forks; nothing is rewritten.
   */
  chain(lastId: string, ownerId: string): Promise<StoredResponse[]>
  /**
   * At start-up: responses a previous run left running end `failed`, keeping their checkpointed
   * text. SQLite: every one; PostgreSQL: this instance's only.
   */
  interruptRunning(): Promise<number>
}

/**
 * The responses a chain ends with, oldest first, read one by one with `get` (each of `ownerId`'s)
 * along previous_response_id; how every backend answers ResponseStore.chain.
 */
export async function followChain(get: (id: string) => Promise<StoredResponse | undefined>, lastId: string): Promise<StoredResponse[]> {
  const chain: StoredResponse[] = []
  for (let id: string | null = lastId; id !== null; ) {
    const response = await get(id)
    if (!response) break
    chain.unshift(response)
    id = response.previous_response_id
  }
  return chain
}

/** The input as stored with the response: images listed without their bytes, which go to the attachments table. */
export function storedInput(input: InputItem[]): InputItem[] {
  return input.map((item) => (item.type === undefined || item.type === 'message') && item.images?.length
    ? { ...item, images: item.images.map(({ id, media_type, width, height, bytes }) => ({ id, media_type, width, height, bytes })) }
    : item)
}

/**
 * The images of the input's messages with their bytes, in order: the attachments a stored
 * response keeps (none in a conversation, whose messages keep them under the same ids).
 */
export function inputImages(response: Pick<StoredResponse, 'input' | 'session_id'>): Array<InputImage & { data: Uint8Array }> {
  if (response.session_id !== null) return []
  return response.input.flatMap((item) => ((item.type === undefined || item.type === 'message') ? (item.images ?? []).filter((image): image is InputImage & { data: Uint8Array } => image.data !== undefined) : []))
}
