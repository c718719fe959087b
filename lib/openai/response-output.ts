import type { ServerToolItem, StoredResponse } from '../store/response-store.ts'

/**
 * What a response answered, in order: read by its events (lib/openai/response-run.ts) and by the
 * history a later response sends (lib/openai/response-input.ts).
 */

export const isRunning = (response: StoredResponse) => response.status === 'queued' || response.status === 'in_progress'

/**
 * The output of a response in order: its reasoning (before anything it thought about), its text,
 * as message items split where MCP items came between (docs/tools.md; one message for a response
 * without them), and its MCP items. A message is its `index`-th, holds deltas `from`..`to`, and
 * is `closed` once something follows it or the response has ended; so is the reasoning.
 */
export type Segment =
  | { kind: 'reasoning'; closed: boolean }
  | { kind: 'message'; index: number; from: number; to: number; closed: boolean }
  | { kind: 'mcp'; item: ServerToolItem }

export function segmentsOf(response: StoredResponse): Segment[] {
  const running = isRunning(response)
  const segments: Segment[] = []
  const { reasoning } = response
  // Only text or an MCP item after it closes it (it was the last output until then).
  const reasoningSegment = reasoning && { kind: 'reasoning' as const, closed: !running || response.deltas.length > 0 || response.mcp_items.length > reasoning.at }
  let from = 0
  let messages = 0
  for (const [index, item] of response.mcp_items.entries()) {
    if (reasoningSegment && index === reasoning!.at) segments.push(reasoningSegment)
    if (item.at > from) segments.push({ kind: 'message', index: messages++, from, to: item.at, closed: true })
    from = Math.max(from, item.at)
    segments.push({ kind: 'mcp', item })
  }
  if (reasoningSegment && reasoning!.at >= response.mcp_items.length) segments.push(reasoningSegment)
  const count = response.deltas.length
  // An empty answer is still a message, once the response ended well without asking for calls.
  const endsWithAnswer = (response.status === 'completed' || response.status === 'incomplete') && response.tool_calls.length === 0 && !response.mcp_items.some((item) => item.type === 'mcp_approval_request')
  if (count > from || endsWithAnswer) segments.push({ kind: 'message', index: messages, from, to: count, closed: !running })
  return segments
}

/** A message's text: its deltas' part of the response's text (`ends`: the deltas' cumulative ends). */
export const textOf = (response: StoredResponse, segment: { from: number; to: number }, ends: number[]) =>
  response.output_text.slice(segment.from === 0 ? 0 : ends[segment.from - 1], segment.to === 0 ? 0 : ends[segment.to - 1])

/** Where each delta of the text, and of the reasoning, ends in it: what events slice them by. */
export interface DeltaEnds {
  text: number[]
  reasoning: number[]
}

export const deltaEndsOf = (response: StoredResponse): DeltaEnds => ({ text: cumulativeEnds(response.deltas), reasoning: cumulativeEnds(response.reasoning?.deltas ?? []) })

/** Where each delta ends in the text. */
export function cumulativeEnds(deltas: number[]): number[] {
  let total = 0
  return deltas.map((length) => (total += length))
}
