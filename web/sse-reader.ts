// Reads a chat's Server-Sent Events from a fetch Response.

import type { Source } from './dom.ts'

export interface StreamEvent {
  type: string
  content?: string
  session_id?: string
  message_id?: string
  user_message_id?: string
  done_reason?: string
  error?: string
  context?: { dropped_messages: number }
  /** `start`: the model writing the reply; `done`: its reasoning time and speed. */
  model?: string
  thinking_ms?: number | null
  tokens_per_second?: number | null
  /** `tool_call`, `tool_result`, `tool_progress`, `tool_images`, `approval_required` (docs/tools.md). */
  call_id?: string
  name?: string
  arguments?: Record<string, unknown>
  ok?: boolean
  duration_ms?: number
  progress?: number
  total?: number
  message?: string
  /** `input_required`, `input_answered`: a tool's request for its user's input (docs/tools.md "Input for a tool"). */
  input_id?: string
  requested_schema?: { properties?: Record<string, any>; required?: string[] }
  action?: string
  /** `sources`: the documents' chunks the reply was given (docs/documents.md). */
  sources?: Source[]
  /** `tool_images`: the images a call's result shows, once stored. */
  images?: Array<{ url: string; width?: number; height?: number }>
}

/** Reads an SSE body, calling `onEvent` for each event. */
export async function readEvents(response: Response, onEvent: (event: StreamEvent) => void): Promise<void> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block.split('\n').find((line) => line.startsWith('data: '))
      // `[DONE]` ends OpenAI's streams (a temporary chat reads /v1/chat/completions): no event.
      if (data && data !== 'data: [DONE]') onEvent(JSON.parse(data.slice(6)))
    }
  }
}
