// The composer: sending a message and reading its reply, Enter to send, Stop.
import { api, problemOf, sleep } from './api.ts'
import { showError, state, ui, type ChatSettings, type ContextCut, type Session } from './dom.ts'
import { beginStreaming, endStreaming, follow, openSession, showExportLinks, showOrganised } from './conversation.ts'
import { toolsChoice } from './tools.ts'
import { documentsChoice } from './documents.ts'
import { showSettings, turnChoice } from './settings.ts'
import { messageElement, replyView, scrollToEnd, showContextCut } from './render.ts'
import { readEvents } from './sse-reader.ts'
import { knownSessions, loadMoreSessions } from './sidebar.ts'
import { sends } from './preferences.ts'
import { isTemporary, sendTemporary } from './temporary.ts'
import { restoreAttachments, takeAttachments, wireAttachments } from './attachments.ts'

/**
 * Posts a turn (a new message, an edit, a regeneration) to `path` and shows its reply streaming
 * into `replyItem`; a 429 is retried after its Retry-After. Resolves with how many messages the
 * model no longer sees (the start event's context), or null when it was refused.
 */
export async function streamTurn(sessionId: string, path: string, payload: Record<string, unknown>, userItem: HTMLLIElement | null, replyItem: HTMLLIElement): Promise<number | null> {
  showError(null)
  const abort = beginStreaming(sessionId)
  try {
    const body = JSON.stringify(payload)
    let response: Response
    for (let attempt = 0; ; attempt++) {
      response = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal })
      // 429 stores nothing, so sending again is safe. A 503 in a chat that existed stored the message: it is shown, not resent.
      if (response.status !== 429 || attempt >= 3) break
      const problem = await problemOf(response)
      showError(`${problem.problem.detail} Retrying in ${problem.retryAfter ?? 1} s…`)
      await sleep(problem.retryAfter ?? 1)
      showError(null)
    }
    if (!response.ok) {
      const problem = await problemOf(response)
      replyItem.remove()
      // A 4xx stored nothing: the question goes too (a 503 stored it in a chat that existed).
      if (response.status < 500) userItem?.remove()
      showError(problem.retryAfter ? `${problem.problem.detail} (try again in ${problem.retryAfter} s)` : problem.problem.detail)
      return null
    }
    const view = replyView(replyItem, (reply) => void follow(sessionId, reply))
    let dropped = 0
    await readEvents(response, (event) => {
      if (event.type === 'start') {
        if (event.user_message_id && userItem) userItem.dataset.id = event.user_message_id
        dropped = event.context?.dropped_messages ?? 0
      }
      view.onEvent(event)
    })
    return dropped
  } catch (error) {
    if (!abort.signal.aborted) showError((error as Error).message)
    return 0
  } finally {
    endStreaming(abort)
  }
}

async function send(text: string): Promise<void> {
  const isNew = state.sessionId === null
  const sessionId = state.sessionId ?? crypto.randomUUID()
  const system = isNew ? ui.system.value.trim() : ''
  const images = takeAttachments()
  const userItem = messageElement({ role: 'user', content: text, status: 'complete', images: images.map((url) => ({ url })) })
  const replyItem = messageElement({ role: 'assistant', content: '', status: 'streaming' })
  ui.messages.append(userItem, replyItem)
  scrollToEnd()
  if (isNew) {
    state.sessionId = sessionId
    ui.systemRow.hidden = true
    ui.temporarySwitch.hidden = true
    // The box is wider without the switch: its height follows its (placeholder's) text again.
    fitInput()
    ui.rename.disabled = false
    history.replaceState(null, '', `/#${sessionId}`)
    showExportLinks(sessionId)
  }
  const payload = { message: text, session_id: sessionId, ...turnChoice(), ...documentsChoice(), ...(system ? { system } : {}), ...(images.length ? { images } : {}), ...toolsChoice() }
  const dropped = await streamTurn(sessionId, '/v1/chat', payload, userItem, replyItem)
  // A refused first message stores nothing, whatever the reason (Ollama down too): the page is a new chat again.
  if (dropped === null && isNew && state.sessionId === sessionId) {
    userItem.remove()
    state.sessionId = null
    ui.systemRow.hidden = false
    ui.temporarySwitch.hidden = false
    ui.rename.disabled = true
    history.replaceState(null, '', '/')
    showExportLinks(null)
  }
  // Refused after the question was stored (Ollama down in a chat that existed): shown as stored,
  // with "Send again" on it, and the error line kept.
  if (dropped === null && userItem.isConnected && state.sessionId === sessionId) {
    const error = ui.error.hidden ? null : ui.error.textContent
    await openSession(sessionId)
    if (error) showError(error)
  }
  // Refused before anything was stored (a model that cannot see, say): text and images wait for another try.
  if (dropped === null && !userItem.isConnected) {
    if (!ui.input.value) {
      ui.input.value = text
      fitInput()
    }
    restoreAttachments(images)
  }
  // A chat this message began now has its settings (the Settings dialog opens on them) and can be
  // pinned, filed, archived and shared; in any chat, when the model no longer sees its start, the
  // divider moves to where its memory begins.
  if ((dropped || (isNew && dropped !== null)) && state.sessionId === sessionId) {
    await api<Session & ChatSettings & { context_cut: ContextCut | null }>(`/v1/sessions/${sessionId}`).then((session) => {
      if (state.sessionId !== sessionId) return
      if (isNew) {
        showSettings(session)
        showOrganised(session)
      }
      if (dropped) showContextCut(session.context_cut)
    }, () => {})
  }
  await loadMoreSessions(true)
  if (state.sessionId === sessionId) {
    ui.title.textContent = knownSessions().find((session) => session.id === sessionId)?.title ?? ui.title.textContent
  }
}

/** Wires the composer's form, keys, images and Stop button. */
export function wireComposer(): void {
  wireAttachments()
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault()
    const text = ui.input.value
    if (!text.trim() || state.streaming) return
    ui.input.value = ''
    fitInput()
    void (isTemporary() ? sendTemporary(text) : send(text))
  })
  ui.input.addEventListener('input', fitInput)
  ui.input.addEventListener('keydown', (event) => {
    if (sends(event)) {
      event.preventDefault()
      ui.composer.requestSubmit()
    }
  })
  ui.stop.addEventListener('click', stopReply)
  // Escape stops the reply being written, from anywhere but a dialog (which it closes) or an edit (which it cancels).
  document.addEventListener('keydown', (event) => {
    // Shift+Escape is the shortcut to the message box (web/shortcuts.ts), not a stop.
    if (event.key !== 'Escape' || event.shiftKey || !state.streaming || event.defaultPrevented || document.querySelector('dialog[open]')) return
    event.preventDefault()
    stopReply()
  })
}

function stopReply(): void {
  const sessionId = state.streaming?.sessionId
  if (sessionId) void api(`/v1/sessions/${sessionId}/cancel`, { method: 'POST' }).catch((error: Error) => showError(error.message))
  // A temporary chat's reply has no session to cancel: its request is closed.
  else state.streaming?.abort.abort()
  // Stop is about to hide: the keyboard's place is the composer, not the page's body.
  if (document.activeElement === ui.stop) ui.input.focus()
}

/** The composer's height follows its text, up to its CSS max-height (then it scrolls). */
export function fitInput(): void {
  const box = ui.input
  box.style.height = 'auto'
  const borders = box.offsetHeight - box.clientHeight
  box.style.height = `${box.scrollHeight + borders}px`
}
