// Branches on the page: edit a question, regenerate a reply, switch between their versions
// ("‹ 2/3 ›"), and copy a message. The server keeps which versions are shown, so a reload keeps them.
import { api } from './api.ts'
import { streamTurn } from './composer.ts'
import { toolsChoice } from './tools.ts'
import { turnChoice } from './settings.ts'
import { openSession } from './conversation.ts'
import { showError, state, ui } from './dom.ts'
import { copied, messageElement, messageText, scrollToEnd } from './render.ts'
import { sends } from './preferences.ts'

/** Removes `item` and every message shown after it: they belong to the version being replaced. */
function removeFrom(item: HTMLLIElement): void {
  while (item.nextElementSibling) item.nextElementSibling.remove()
  item.remove()
}

/** Shows the session as stored after a turn; a refusal's message stays in view. */
async function reload(sessionId: string): Promise<void> {
  if (state.sessionId !== sessionId) return
  const error = ui.error.hidden ? null : ui.error.textContent
  await openSession(sessionId)
  if (error) showError(error)
}

/** A question left without a reply: its reply is asked for now (the server answers the question itself). */
async function answer(sessionId: string, question: HTMLLIElement, questionId: string): Promise<void> {
  question.querySelector('[data-action="answer"]')?.remove()
  while (question.nextElementSibling) question.nextElementSibling.remove()
  const replyItem = messageElement({ role: 'assistant', content: '', status: 'streaming' })
  ui.messages.append(replyItem)
  scrollToEnd()
  await streamTurn(sessionId, `/v1/sessions/${sessionId}/messages/${questionId}/regenerate`, { ...turnChoice(), ...toolsChoice() }, null, replyItem)
  await reload(sessionId)
}

/** A new version of a reply: written again, or (`continue`) going on from where it was cut. */
async function regenerate(sessionId: string, reply: HTMLLIElement, replyId: string, payload: Record<string, unknown> = toolsChoice()): Promise<void> {
  removeFrom(reply)
  const replyItem = messageElement({ role: 'assistant', content: '', status: 'streaming' })
  ui.messages.append(replyItem)
  scrollToEnd()
  await streamTurn(sessionId, `/v1/sessions/${sessionId}/messages/${replyId}/regenerate`, payload, null, replyItem)
  await reload(sessionId)
}

/** Turns a question into a form; sending it asks again from the same point, as a new version. */
function startEdit(sessionId: string, question: HTMLLIElement, questionId: string): void {
  if (question.querySelector('form.edit')) return
  const form = document.createElement('form')
  form.className = 'edit'
  const text = document.createElement('textarea')
  text.value = messageText(question)
  text.setAttribute('aria-label', 'Edited message')
  const save = document.createElement('button')
  save.type = 'submit'
  save.textContent = 'Send'
  const cancel = document.createElement('button')
  cancel.type = 'button'
  cancel.textContent = 'Cancel'
  cancel.addEventListener('click', () => form.remove())
  // As in the composer: Enter (or Ctrl+Enter, as preferred) sends; Escape gives up the edit.
  text.addEventListener('keydown', (event) => {
    if (sends(event)) {
      event.preventDefault()
      form.requestSubmit()
    } else if (event.key === 'Escape') {
      event.preventDefault()
      event.stopPropagation()
      form.remove()
    }
  })
  form.append(text, save, cancel)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    const message = text.value
    if (!message.trim() || state.streaming) return
    void sendEdit(sessionId, question, questionId, message)
  })
  question.append(form)
  text.focus()
}

async function sendEdit(sessionId: string, question: HTMLLIElement, questionId: string, message: string): Promise<void> {
  // The new version keeps the question's images (the server copies them).
  const images = [...question.querySelectorAll<HTMLAnchorElement>('.images a')].map((link) => ({ url: link.getAttribute('href')! }))
  removeFrom(question)
  const userItem = messageElement({ role: 'user', content: message, status: 'complete', images })
  const replyItem = messageElement({ role: 'assistant', content: '', status: 'streaming' })
  ui.messages.append(userItem, replyItem)
  scrollToEnd()
  await streamTurn(sessionId, '/v1/chat', { message, session_id: sessionId, edit_of: questionId, ...turnChoice(), ...toolsChoice() }, userItem, replyItem)
  await reload(sessionId)
}

async function showVersion(sessionId: string, messageId: string): Promise<void> {
  try {
    await api(`/v1/sessions/${sessionId}/current`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message_id: messageId }) })
    if (state.sessionId === sessionId) await openSession(sessionId)
  } catch (error) {
    showError((error as Error).message)
  }
}

/** Answers the messages' buttons (one listener for the whole list). */
export function wireBranches(): void {
  ui.messages.addEventListener('click', (event) => {
    const button = (event.target as Element).closest<HTMLButtonElement>('button[data-action]')
    const item = button?.closest<HTMLLIElement>('li.message')
    if (!button || !item) return
    const { action, target } = button.dataset
    if (action === 'copy') {
      void navigator.clipboard?.writeText(messageText(item)).then(() => copied(button), () => {})
      return
    }
    if (action === 'read-aloud') {
      readAloud(item, button)
      return
    }
    const sessionId = state.sessionId
    const id = item.dataset.id
    if (!sessionId || !id) return
    if (action === 'rate') {
      void rate(sessionId, id, button)
      return
    }
    // Nothing else while a reply is being written, or before the message is stored.
    if (state.streaming) return
    if (action === 'regenerate') void regenerate(sessionId, item, id)
    else if (action === 'continue') void regenerate(sessionId, item, id, { continue: true })
    else if (action === 'answer') void answer(sessionId, item, id)
    else if (action === 'edit') startEdit(sessionId, item, id)
    else if (action === 'sibling' && target) void showVersion(sessionId, target)
  })
}

/** Thumbs up or down on a reply (pressed again: taken back), stored with it. */
async function rate(sessionId: string, id: string, button: HTMLButtonElement): Promise<void> {
  const rating = button.getAttribute('aria-pressed') === 'true' ? null : button.dataset.rating
  try {
    await api(`/v1/sessions/${sessionId}/messages/${id}`, { method: 'PATCH', body: JSON.stringify({ rating }) })
    for (const other of button.parentElement!.querySelectorAll<HTMLButtonElement>('[data-action="rate"]')) other.setAttribute('aria-pressed', String(other.dataset.rating === rating))
  } catch (error) {
    showError((error as Error).message)
  }
}

/** Reads a reply with the browser's speech synthesis; its button stops it, as does reading another. */
function readAloud(item: HTMLLIElement, button: HTMLButtonElement): void {
  const speech = globalThis.speechSynthesis
  if (!speech) {
    showError('This browser cannot read aloud.')
    return
  }
  const wasReading = button.textContent === 'Stop reading'
  speech.cancel()
  for (const reading of ui.messages.querySelectorAll<HTMLButtonElement>('[data-action="read-aloud"]')) reading.textContent = 'Read aloud'
  if (wasReading) return
  // What a listener wants is the words: the rendered text, not the Markdown's marks.
  const utterance = new SpeechSynthesisUtterance((item.querySelector('.body')?.textContent ?? '').trim())
  utterance.addEventListener('end', () => (button.textContent = 'Read aloud'))
  utterance.addEventListener('error', () => (button.textContent = 'Read aloud'))
  button.textContent = 'Stop reading'
  speech.speak(utterance)
}
