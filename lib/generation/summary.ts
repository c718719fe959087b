import type { Logger } from '../observability/log.ts'
import type { OllamaPool } from '../ollama/pool.ts'
import type { PromptMessage } from '../store/chat-store.ts'

/** The most of the budget a summary may take (its num_predict). */
export const SUMMARY_SHARE = 0.15

const INSTRUCTION = 'Summarize the conversation below for an assistant that will continue it without seeing it: '
  + 'the facts, names, numbers, decisions and open questions, in the language of the conversation. '
  + 'Write only the summary, as short as it can be while keeping all of that.'

/**
 * What `dropped` (and the summary before it) said, written by `model` in a request of its own,
 * at most SUMMARY_SHARE of `budget` tokens long (a summary cut short there is still used). Null
 * when the request fails: the caller falls back to the plain cut, and the user's turn goes on.
 */
export async function summarize(ollama: OllamaPool, log: Logger, { model, numCtx, budget, previous, dropped, signal }: {
  model: string
  numCtx: number
  budget: number
  previous: string | null
  dropped: PromptMessage[]
  signal: AbortSignal
}): Promise<string | null> {
  const transcript = [
    ...(previous ? [`(Summary of what came before: ${previous})`] : []),
    ...dropped.map((message) => `${message.role === 'user' ? 'User' : 'Assistant'}: ${message.content}`),
  ].join('\n\n')
  try {
    const lease = await ollama.startChat({
      model,
      messages: [{ role: 'system', content: INSTRUCTION }, { role: 'user', content: transcript }],
      options: { num_ctx: numCtx, num_predict: Math.max(16, Math.floor(budget * SUMMARY_SHARE)) },
      truncate: false,
    }, signal)
    let text = ''
    try {
      for await (const chunk of lease.stream) text += chunk.message?.content ?? ''
    } finally {
      lease.release()
    }
    return text.trim() || null
  } catch (error) {
    log.warn('the summary of a cut failed; the turns before it are dropped without one', { model, error })
    return null
  }
}
