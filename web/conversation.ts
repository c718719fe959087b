// The open conversation: loading its messages, and following a reply being written.
import { api, problemOf } from './api.ts'
import { showError, state, ui, type ChatSettings, type ContextCut, type Message, type Session } from './dom.ts'
import { messageElement, offerAnswer, replyView, scrollToEnd, showContextCut } from './render.ts'
import { readEvents } from './sse-reader.ts'
import { renderSessions } from './sidebar.ts'
import { foldToolSteps } from './tools.ts'
import { showSettings } from './settings.ts'
import { refreshEmptyState, renderEmptyState } from './empty-state.ts'
import { clearTemporary } from './temporary.ts'

export function setStreaming(streaming: boolean): void {
  // The box stays editable (the next message can be written, and focus stays in it); only sending waits.
  ui.send.disabled = streaming
  ui.stop.hidden = !streaming
  ui.remove.disabled = streaming || !state.sessionId
  if (!streaming) ui.input.focus()
}

export async function openSession(id: string | null): Promise<void> {
  state.streaming?.abort.abort()
  state.streaming = null
  // The chat shown again (after a turn, an edit) stays in view until its stored form replaces it whole.
  if (id === null || state.sessionId !== id) ui.messages.replaceChildren()
  state.sessionId = id
  // A stored chat is never temporary; a new one stays as the switch says.
  if (id !== null) ui.temporary.checked = false
  ui.temporarySwitch.hidden = id !== null
  clearTemporary()
  showError(null)
  ui.systemRow.hidden = id !== null
  ui.rename.disabled = id === null
  ui.remove.disabled = id === null
  showOrganised(null)
  showExportLinks(id)
  setStreaming(false)
  if (id === null) {
    showSettings(null)
    void refreshEmptyState()
    history.replaceState(null, '', '/')
    renderSessions()
    return
  }
  history.replaceState(null, '', `/#${id}`)
  renderEmptyState()
  renderSessions()
  try {
    const session = await api<Session & ChatSettings & { context_cut: ContextCut | null }>(`/v1/sessions/${id}`)
    if (state.sessionId !== id) return
    ui.title.textContent = session.title
    showSettings(session)
    showOrganised(session)
    const messages: Message[] = []
    let cursor: string | null = null
    do {
      const page: { messages: Message[]; next_cursor: string | null } = await api(`/v1/sessions/${id}/messages?limit=500${cursor ? `&cursor=${cursor}` : ''}`)
      messages.push(...page.messages)
      cursor = page.next_cursor
    } while (cursor)
    if (state.sessionId !== id) return
    ui.messages.replaceChildren(...foldToolSteps(messages, messageElement, id, (item) => void follow(id, item)))
    showContextCut(session.context_cut)
    scrollToEnd()
    const last = messages.at(-1)
    // A question without its reply (Ollama was down): it can be sent again.
    if (last?.role === 'user') offerAnswer(ui.messages.lastElementChild as HTMLLIElement)
    // A reply still being written (after a reload, or from another tab): follow it.
    if (last?.role === 'assistant' && last.status === 'streaming') void follow(id, ui.messages.lastElementChild as HTMLLIElement)
  } catch (error) {
    showError((error as Error).message)
  }
}

/** The open chat's Pin, Folder… and Archive, as it is organised (none for a new chat). */
export function showOrganised(session: Pick<Session, 'pinned' | 'archived' | 'folder'> | null): void {
  state.organised = session && { pinned: session.pinned, archived: session.archived, folder: session.folder }
  ui.pin.disabled = ui.archive.disabled = ui.moveFolder.disabled = ui.share.disabled = session === null
  ui.pin.textContent = session?.pinned ? 'Unpin' : 'Pin'
  ui.archive.textContent = session?.archived ? 'Restore' : 'Archive'
  ui.moveFolder.title = session?.folder ? `In the folder ${session.folder}` : 'In no folder'
}

/** The open chat's downloads: its JSON export (every branch) and its Markdown (the path shown). */
export function showExportLinks(id: string | null): void {
  ui.exportJson.hidden = ui.exportMarkdown.hidden = id === null
  if (id === null) return
  ui.exportJson.href = `/v1/sessions/${id}/export`
  ui.exportMarkdown.href = `/v1/sessions/${id}/export?format=markdown`
}

/** Marks a reply as streaming in `sessionId`; the controller stops reading it. */
export function beginStreaming(sessionId: string): AbortController {
  const abort = new AbortController()
  state.streaming = { sessionId, abort }
  setStreaming(true)
  return abort
}

export function endStreaming(abort: AbortController): void {
  if (state.streaming?.abort !== abort) return
  state.streaming = null
  setStreaming(false)
}

/** Follows the session's reply being written into `item` (after a reload, or once its tool calls are answered). */
export async function follow(sessionId: string, item: HTMLLIElement): Promise<void> {
  const abort = beginStreaming(sessionId)
  try {
    const response = await fetch(`/v1/sessions/${sessionId}/stream`, { signal: abort.signal })
    if (response.status === 404) {
      // It finished in between: show what was stored.
      if (state.sessionId === sessionId) void openSession(sessionId)
      return
    }
    if (!response.ok) throw await problemOf(response)
    await readEvents(response, replyView(item, (reply) => void follow(sessionId, reply)).onEvent)
  } catch (error) {
    if (!abort.signal.aborted) showError((error as Error).message)
  } finally {
    endStreaming(abort)
  }
}

/**
 * Scrolls to a message of the open chat and marks it (a search result's). One on a branch not
 * shown is brought into view first: the chat switches to the path through it.
 */
export async function showMessage(messageId: string): Promise<void> {
  const find = () => ui.messages.querySelector<HTMLLIElement>(`li.message[data-id="${CSS.escape(messageId)}"]`)
  const sessionId = state.sessionId
  if (!find() && sessionId) {
    try {
      await api(`/v1/sessions/${sessionId}/current`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message_id: messageId }) })
    } catch (error) {
      showError((error as Error).message)
      return
    }
    if (state.sessionId !== sessionId) return
    await openSession(sessionId)
  }
  const item = find()
  if (!item) return
  item.scrollIntoView({ block: 'center' })
  item.classList.add('found')
}
