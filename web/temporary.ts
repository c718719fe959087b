// A temporary chat (docs/page.md): never stored. Its turns go to the stateless
// /v1/chat/completions (nothing in the database, the list or search), streamed as any reply; its
// history lives in this page alone and is gone on reload.
import { problemOf } from './api.ts'
import { showError, state, ui } from './dom.ts'
import { beginStreaming, endStreaming } from './conversation.ts'
import { messageElement, replyView, scrollToEnd } from './render.ts'
import { readEvents } from './sse-reader.ts'
import { restoreAttachments, takeAttachments } from './attachments.ts'

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } }
interface Turn { role: 'system' | 'user' | 'assistant'; content: string | Part[] }

let turns: Turn[] = []

export const isTemporary = (): boolean => ui.temporary.checked && state.sessionId === null

/** A temporary message has no stored id: what needs one (edit, regenerate, rating) is not offered. */
function withoutStoredActions(item: HTMLLIElement): HTMLLIElement {
  for (const button of item.querySelectorAll('[data-action="edit"], [data-action="regenerate"], [data-action="rate"]')) button.remove()
  return item
}

/** Forgets the temporary chat shown (a new chat, or the switch turned off). */
export function clearTemporary(): void {
  turns = []
  ui.title.textContent = isTemporary() ? 'Temporary chat' : 'New chat'
  ui.temporaryNote.hidden = !isTemporary()
}

interface CompletionChunk {
  model?: string
  choices?: Array<{ delta?: { content?: string | null; reasoning?: string }; finish_reason?: string | null }>
  error?: { message?: string }
}

export async function sendTemporary(text: string): Promise<void> {
  const system = turns.length === 0 ? ui.system.value.trim() : ''
  if (system) turns.push({ role: 'system', content: system })
  const images = takeAttachments()
  const userItem = withoutStoredActions(messageElement({ role: 'user', content: text, status: 'complete', images: images.map((url) => ({ url })) }))
  const replyItem = withoutStoredActions(messageElement({ role: 'assistant', content: '', status: 'streaming' }))
  ui.messages.append(userItem, replyItem)
  ui.systemRow.hidden = true
  scrollToEnd()
  const question: Turn = { role: 'user', content: images.length ? [{ type: 'text', text }, ...images.map((url): Part => ({ type: 'image_url', image_url: { url } }))] : text }
  showError(null)
  // No stored session to cancel: Stop aborts the request, which stops Ollama's generation too.
  const abort = beginStreaming('')
  const view = replyView(replyItem, () => {})
  let answer = ''
  let finished = false
  try {
    const response = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: ui.model.value || state.defaultModel, messages: [...turns, question], stream: true }),
      signal: abort.signal,
    })
    if (!response.ok) {
      userItem.remove()
      replyItem.remove()
      restoreAttachments(images)
      if (!ui.input.value) ui.input.value = text
      showError((await problemOf(response)).problem.detail)
      return
    }
    view.onEvent({ type: 'start', model: ui.model.value || state.defaultModel })
    await readEvents(response, (event) => {
      const chunk = event as unknown as CompletionChunk
      if (chunk.error) return view.onEvent({ type: 'error', error: chunk.error.message ?? 'The reply failed.' })
      const choice = chunk.choices?.[0]
      if (choice?.delta?.reasoning) view.onEvent({ type: 'thinking', content: choice.delta.reasoning })
      if (choice?.delta?.content) {
        answer += choice.delta.content
        view.onEvent({ type: 'token', content: choice.delta.content })
      }
      if (choice?.finish_reason) {
        finished = true
        view.onEvent({ type: 'done', done_reason: choice.finish_reason })
      }
    })
    turns.push(question, { role: 'assistant', content: answer })
  } catch (error) {
    if (!abort.signal.aborted) showError((error as Error).message)
    // Stopped: what came is kept, in the page and for the next turn.
    turns.push(question, { role: 'assistant', content: answer })
  } finally {
    if (!finished && replyItem.isConnected) view.onEvent({ type: 'done', done_reason: abort.signal.aborted ? 'cancelled' : 'error' })
    endStreaming(abort)
  }
}
