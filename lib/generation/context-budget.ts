import type { PromptMessage } from '../store/chat-store.ts'
import type { Config } from '../shared/config.ts'
import { HttpProblem } from '../shared/problem.ts'

/**
 * The context budget of a long conversation (docs/long-conversations.md): what of its history a
 * request sends so that the prompt fits num_ctx with room for the reply, cut in blocks of whole
 * turns so that between two cuts each prompt extends the previous one byte for byte (Ollama then
 * reuses its KV cache), and never truncated silently by Ollama (`truncate: false`).
 */

/** What of a message the model reads as text: its content, and the calls it makes. */
const textOf = (message: PromptMessage): string =>
  message.toolCalls?.length ? message.content + JSON.stringify(message.toolCalls.map(({ name, arguments: args }) => ({ name, arguments: args }))) : message.content

/** What an image costs in a prompt: Ollama counts each one as this many tokens when it fits a prompt to num_ctx. */
export const TOKENS_PER_IMAGE = 768
const imageTokens = (messages: PromptMessage[]) => messages.reduce((sum, message) => sum + (message.imageCount ?? 0) * TOKENS_PER_IMAGE, 0)

/** The budget of one request, in tokens: num_ctx less the reply's reserve. */
export function budgetOf(numCtx: number, maxTokens: number | undefined, config: Pick<Config, 'contextReserve'>): number {
  if (maxTokens !== undefined && maxTokens >= numCtx) {
    throw new HttpProblem(400, 'validation', `max_tokens (${maxTokens}) leaves no room for the conversation in num_ctx (${numCtx}); ask for fewer tokens or a larger num_ctx.`)
  }
  const { contextReserve: reserve } = config
  const reserved = maxTokens ?? ('tokens' in reserve ? reserve.tokens : Math.ceil(numCtx * reserve.fraction))
  return Math.max(0, numCtx - reserved)
}

/**
 * Tokens per ASCII character before any reply of the model was measured: an over-estimate (3
 * characters a token; English runs about 4). Other characters (accents, CJK, emoji) count a token
 * each, which tokenizers rarely exceed.
 */
const FIRST_TOKENS_PER_CHAR = 1 / 3
const TOKENS_PER_OTHER_CHAR = 1
/** Tokens a chat template adds per message (role markers, separators); generous for common templates. */
export const TOKENS_PER_MESSAGE = 8
const MIN_TOKENS_PER_MESSAGE = 2
/** The estimate stays this much above what Ollama counted: sending a little less is harmless. */
const SAFETY = 1.05
const SAMPLES = 8

/**
 * Estimates prompt sizes from characters, per model, corrected by what Ollama counted: each
 * reply's prompt_eval_count (the whole prompt) for the messages that were sent gives a sample of
 * tokens per character once the per-message overhead is taken off; the estimate uses the largest
 * of the last few samples, plus a margin, so it converges on the model's count from above.
 */
export class TokenEstimator {
  private readonly samples = new Map<string, number[]>()

  tokensPerChar(model: string): number {
    const samples = this.samples.get(model)
    return samples?.length ? Math.max(...samples) * SAFETY : FIRST_TOKENS_PER_CHAR
  }

  /** The estimated tokens of `messages` as a prompt for `model`. */
  estimate(model: string, messages: PromptMessage[]): number {
    const perChar = this.tokensPerChar(model)
    let total = 0
    for (const message of messages) {
      const text = textOf(message)
      const other = otherChars(text)
      total += Math.ceil((text.length - other) * perChar + other * TOKENS_PER_OTHER_CHAR) + TOKENS_PER_MESSAGE
    }
    return total + imageTokens(messages)
  }

  /** Ollama refused a prompt as longer than num_ctx: every sample of `model` counts a quarter higher. */
  underestimated(model: string): void {
    const samples = this.samples.get(model)
    this.samples.set(model, samples?.length ? samples.map((sample) => sample * 1.25) : [FIRST_TOKENS_PER_CHAR * 1.25])
  }

  /** Ollama counted `promptTokens` for `messages`: a sample for `model`. */
  observe(model: string, messages: PromptMessage[], promptTokens: number): void {
    let ascii = 0
    let other = 0
    for (const message of messages) {
      const text = textOf(message)
      const count = otherChars(text)
      other += count
      ascii += text.length - count
    }
    // Images are counted at their fixed cost; the characters get the rest.
    promptTokens -= imageTokens(messages)
    if (ascii < 200 || promptTokens <= 0) return
    // Every template adds at least this much per message; the rest is counted per character, so
    // a template's overhead is over-counted (never under-counted) in the estimate.
    const perChar = Math.max(0.05, (promptTokens - MIN_TOKENS_PER_MESSAGE * messages.length - other * TOKENS_PER_OTHER_CHAR) / ascii)
    const samples = this.samples.get(model) ?? []
    samples.push(perChar)
    if (samples.length > SAMPLES) samples.shift()
    this.samples.set(model, samples)
  }
}

/** UTF-16 code units outside ASCII in `text`. */
function otherChars(text: string): number {
  let count = 0
  for (let index = 0; index < text.length; index++) if (text.charCodeAt(index) > 0x7f) count++
  return count
}

export interface ContextCut {
  /** The first message sent after the system prompt (and summary); null: from the start. */
  messageId: string | null
  /** What the dropped turns said, when CONTEXT_SUMMARY is on. */
  summary: string | null
}

export interface PromptPlan {
  /** The messages to send: the system prompt, the summary, then the history from the cut. */
  messages: PromptMessage[]
  /** The leading system messages (always sent), and the history from the cut. */
  system: PromptMessage[]
  sent: PromptMessage[]
  /** The cut to keep with the conversation; `changed` when this request made it. */
  cut: ContextCut
  changed: boolean
  /** The user and assistant messages before the cut, and those this request dropped (for a summary). */
  dropped: number
  newlyDropped: PromptMessage[]
  estimatedTokens: number
  budgetTokens: number
}

export interface PlanInput {
  model: string
  /** Every message of the conversation, oldest first, the new one last. */
  history: PromptMessage[]
  cut: ContextCut | null
  budget: number
  lowWater: number
  /** Room kept for a summary that a cut will write (0 when summaries are off). */
  summaryTokens: number
  estimator: TokenEstimator
}

export const contextOverflow = (needed: number, budget: number) =>
  new HttpProblem(400, 'context_overflow', `The message and the system prompt need about ${needed} tokens, more than the ${budget} this request has for the conversation (num_ctx less the reply's reserve); shorten the message, or use a larger num_ctx.`)

/**
 * The prompt of a request: from the kept cut while it fits the budget; past it, a new cut at the
 * start of a whole turn (a user message), the oldest dropped first, down to `lowWater` of the
 * budget. System messages always go first; the newest message always goes. Throws 400
 * context_overflow when the newest message does not fit even alone with the system prompt.
 */
export function planPrompt({ model, history, cut, budget, lowWater, summaryTokens, estimator }: PlanInput): PromptPlan {
  // The system prompt: the system messages the conversation begins with. Later ones (a developer
  // message mid-conversation) belong to their turn.
  const leading = history.findIndex((message) => message.role !== 'system')
  const system = leading < 0 ? history : history.slice(0, leading)
  const turns = leading < 0 ? [] : history.slice(leading)
  const estimate = (messages: PromptMessage[]) => estimator.estimate(model, messages)
  // Each message is estimated once; fromIndex[i] is what turns i.. cost together.
  const fromIndex = new Array<number>(turns.length + 1).fill(0)
  for (let index = turns.length - 1; index >= 0; index--) fromIndex[index] = fromIndex[index + 1]! + estimate([turns[index]!])
  const systemTokens = estimate(system)
  let start = cut?.messageId ? turns.findIndex((message) => message.id === cut.messageId) : 0
  // The cut message is gone (deleted): from the turn that followed it is no longer known, so from the start.
  if (start < 0) start = 0
  const summaryOf = (keep: ContextCut | null): PromptMessage[] => (keep?.summary ? [{ id: null, role: 'system', content: keep.summary }] : [])
  const lastTurn = turns.findLastIndex((message) => message.role === 'user')
  const newest = Math.max(0, lastTurn)
  const alone = systemTokens + fromIndex[newest]!
  if (alone > budget) throw contextOverflow(alone, budget)

  const kept = systemTokens + estimate(summaryOf(cut)) + fromIndex[start]!
  if (kept <= budget) {
    return plan(system, summaryOf(cut), turns, start, cut ?? { messageId: null, summary: null }, false, [], kept, budget)
  }
  // A new cut: the first turn start from which the rest, with room for a summary, is within low water.
  const target = budget * lowWater
  const withSummary = summaryTokens > 0 ? summaryTokens + TOKENS_PER_MESSAGE : estimate(summaryOf(cut))
  let next = newest
  for (let index = start + 1; index < newest; index++) {
    if (turns[index]!.role === 'user' && systemTokens + withSummary + fromIndex[index]! <= target) {
      next = index
      break
    }
  }
  const newCut: ContextCut = { messageId: turns[next]!.id, summary: cut?.summary ?? null }
  const estimated = systemTokens + estimate(summaryOf(newCut)) + fromIndex[next]!
  return plan(system, summaryOf(newCut), turns, next, newCut, true, turns.slice(start, next), estimated, budget)
}

function plan(system: PromptMessage[], summary: PromptMessage[], turns: PromptMessage[], start: number, cut: ContextCut, changed: boolean, newlyDropped: PromptMessage[], estimatedTokens: number, budgetTokens: number): PromptPlan {
  const sent = turns.slice(start)
  return { messages: [...system, ...summary, ...sent], system, sent, cut, changed, dropped: start, newlyDropped, estimatedTokens, budgetTokens }
}

/** The plan with its cut's summary (just written) sent right after the system prompt. */
export function withSummary(plan: PromptPlan, estimator: TokenEstimator, model: string): PromptPlan {
  const summary = plan.cut.summary ? [{ id: null, role: 'system', content: plan.cut.summary }] : []
  const messages = [...plan.system, ...summary, ...plan.sent]
  return { ...plan, messages, estimatedTokens: estimator.estimate(model, messages) }
}

/** Ollama's 400 for a prompt longer than num_ctx (sent with `truncate: false`). */
export function isContextLengthError(error: unknown): boolean {
  const cause = (error as { cause?: { status_code?: unknown } } | undefined)?.cause
  return error instanceof HttpProblem && cause?.status_code === 400 && /context length/i.test(error.detail)
}

/** The `context` of a reply's start event and JSON answer. */
export function contextReport(plan: PromptPlan) {
  return {
    sent_messages: plan.messages.length,
    dropped_messages: plan.dropped,
    estimated_tokens: plan.estimatedTokens,
    budget_tokens: plan.budgetTokens,
    summarized: plan.cut.summary !== null && plan.dropped > 0,
  }
}
