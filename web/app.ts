// The chat page's entry: plain DOM, no framework. It wires the parts and starts them.
import { ensureSignedIn, wireSignOut } from './account.ts'
import { api } from './api.ts'
import { showError, state, ui, type Session } from './dom.ts'
import { wireBranches } from './branches.ts'
import { wireComposer } from './composer.ts'
import { wireTransfer } from './transfer.ts'
import { openSession, showMessage, showOrganised } from './conversation.ts'
import { wireSearch } from './search.ts'
import { loadTools } from './tools.ts'
import { fillSessionList, loadMoreSessions, onSessionChosen, organise, showArchived } from './sidebar.ts'
import { loadModels, wireSettings } from './settings.ts'
import { wireDocuments } from './documents.ts'
import { wireScrolling } from './render.ts'
import { wireShortcuts } from './shortcuts.ts'
import { wirePreferences } from './preferences.ts'
import { wirePrompts } from './prompts.ts'
import { loadSharing, wireSharing } from './share.ts'
import { renderEmptyState } from './empty-state.ts'

async function checkHealth(): Promise<void> {
  try {
    const response = await fetch('/health', { cache: 'no-store' })
    const health: { services: { ollama: string; database: string } } = await response.json()
    const problems = [
      health.services.ollama !== 'healthy' ? 'Ollama is not reachable: replies cannot be generated until it is back.' : '',
      health.services.database !== 'healthy' ? 'The database is not answering.' : '',
    ].filter(Boolean)
    ui.banner.hidden = problems.length === 0
    ui.banner.textContent = problems.join(' ')
  } catch {
    ui.banner.hidden = false
    ui.banner.textContent = 'The chat server is not reachable.'
  }
}

onSessionChosen((id) => void openSession(id))
wireSearch((sessionId, messageId) => void openSession(sessionId).then(() => (messageId ? showMessage(messageId) : undefined)))
wirePrompts()
wireSharing()
wireComposer()
wireScrolling()
wireBranches()
wireTransfer()
wireSettings()
wireDocuments()
// From here on the page answers what is typed (the tests wait for it before they type).
document.body.dataset.ready = 'true'
const newChat = () => {
  void openSession(null)
  ui.input.focus()
}
ui.newChat.addEventListener('click', newChat)
// Switched either way, the page starts a new chat of that kind (a temporary one's history goes).
ui.temporary.addEventListener('change', () => void openSession(null))
wireShortcuts({ newChat })
wirePreferences()
ui.model.addEventListener('change', renderEmptyState)
// Narrow screens: the chat's actions are behind Menu, which closes once one is used.
ui.chatMenu.addEventListener('click', () => {
  const open = ui.chatActions.classList.toggle('open')
  ui.chatMenu.setAttribute('aria-expanded', String(open))
})
// Wide screens: the rarer actions are behind More.
function closeMore(): void {
  ui.chatMore.classList.remove('open')
  ui.moreActions.setAttribute('aria-expanded', 'false')
}
ui.moreActions.addEventListener('click', () => {
  const open = ui.chatMore.classList.toggle('open')
  ui.moreActions.setAttribute('aria-expanded', String(open))
  if (open) ui.chatMore.querySelector<HTMLElement>('button:not(:disabled), a:not([hidden])')?.focus()
})
ui.chatMore.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return
  event.stopPropagation()
  closeMore()
  ui.moreActions.focus()
})
document.addEventListener('click', (event) => {
  if (!ui.chatMore.classList.contains('open') || ui.moreActions.contains(event.target as Node)) return
  if (!ui.chatMore.contains(event.target as Node) || (event.target as Element).closest('button, a')) closeMore()
})
ui.chatActions.addEventListener('click', (event) => {
  const target = event.target as Element
  if (!target.closest('button, a') || target.closest('#more-actions')) return
  ui.chatActions.classList.remove('open')
  ui.chatMenu.setAttribute('aria-expanded', 'false')
})
ui.toggleSidebar.addEventListener('click', () => {
  const open = ui.sessionList.classList.toggle('open')
  ui.toggleSidebar.setAttribute('aria-expanded', String(open))
  if (open) fillSessionList()
})
ui.sessionList.addEventListener('scroll', () => {
  const { scrollTop, scrollHeight, clientHeight } = ui.sessionList
  if (scrollTop + clientHeight > scrollHeight - 80) void loadMoreSessions()
})
ui.rename.addEventListener('click', () => {
  ui.renameInput.value = ui.title.textContent ?? ''
  ui.renameDialog.returnValue = ''
  ui.renameDialog.showModal()
})
ui.renameDialog.addEventListener('close', () => {
  const id = state.sessionId
  if (ui.renameDialog.returnValue !== 'ok' || !id) return
  const title = ui.renameInput.value.trim()
  if (!title) return
  void api<Session>(`/v1/sessions/${id}`, { method: 'PATCH', body: JSON.stringify({ title }) })
    .then((session) => {
      ui.title.textContent = session.title
      return loadMoreSessions(true)
    })
    .catch((error: Error) => showError(error.message))
})
// Organising the open chat: pinned, archived (restorable), in a folder.
async function organiseOpenChat(change: Record<string, unknown>): Promise<void> {
  const id = state.sessionId
  if (!id) return
  const session = await organise(id, change)
  if (session && state.sessionId === id) showOrganised(session)
}
ui.pin.addEventListener('click', () => void organiseOpenChat({ pinned: !state.organised?.pinned }))
ui.archive.addEventListener('click', () => void organiseOpenChat({ archived: !state.organised?.archived }))
ui.showArchived.addEventListener('click', () => void showArchived(!state.archivedView))
ui.moveFolder.addEventListener('click', () => {
  void api<{ folders: Array<{ name: string }> }>('/v1/folders').then(({ folders }) => {
    ui.folderNames.replaceChildren(...folders.map(({ name }) => Object.assign(document.createElement('option'), { value: name })))
  }, () => undefined)
  ui.folderInput.value = state.organised?.folder ?? ''
  ui.folderDialog.returnValue = ''
  ui.folderDialog.showModal()
})
ui.folderDialog.addEventListener('close', () => {
  if (ui.folderDialog.returnValue !== 'ok') return
  void organiseOpenChat({ folder: ui.folderInput.value.trim() || null })
})
ui.remove.addEventListener('click', () => {
  ui.deleteDialog.returnValue = ''
  ui.deleteDialog.showModal()
})
// A dialog's Cancel is not a submit button: Enter in a field submits with the dialog's action, never
// with Cancel. Escape closes a dialog without touching returnValue, so each opener clears it first.
for (const button of document.querySelectorAll<HTMLButtonElement>('dialog button[data-close]')) {
  button.addEventListener('click', () => button.closest('dialog')!.close('cancel'))
}
ui.deleteDialog.addEventListener('close', () => {
  const id = state.sessionId
  if (ui.deleteDialog.returnValue !== 'ok' || !id) return
  void api(`/v1/sessions/${id}`, { method: 'DELETE' })
    .then(async () => {
      await openSession(null)
      await loadMoreSessions(true)
    })
    .catch((error: Error) => showError(error.message))
})

wireSignOut()
void checkHealth()
setInterval(() => void checkHealth(), 10_000)
void ensureSignedIn().then(
  (ready) => {
    if (!ready) return
    void loadModels().then(renderEmptyState)
    void loadTools().then(renderEmptyState)
    void loadSharing()
    void loadMoreSessions(true)
      .then(() => {
        // A message typed before the chats had loaded began a chat (or a temporary one): the page
        // stays on it. Opening the address's chat now would drop its stream, or find it not yet stored.
        if (state.sessionId !== null || ui.messages.childElementCount > 0) return
        const fromUrl = location.hash.slice(1)
        return openSession(/^[0-9a-f-]{36}$/i.test(fromUrl) ? fromUrl : null)
      })
      .finally(() => (document.body.dataset.loaded = 'true'))
  },
  (error: Error) => showError(error.message),
)
