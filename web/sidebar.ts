// The sessions sidebar: the list, paged through its cursor as it scrolls.
import { api } from './api.ts'
import { showError, state, ui, type Session } from './dom.ts'

let openChosen: (id: string) => void = () => {}

/** What a click on a chat in the list does (the conversation's openSession, wired by the entry). */
export function onSessionChosen(open: (id: string) => void): void {
  openChosen = open
}

export function renderSessions(): void {
  ui.sessionList.replaceChildren(
    ...state.sessions.map((session) => {
      const item = document.createElement('li')
      const button = document.createElement('button')
      button.type = 'button'
      button.textContent = session.title
      button.title = session.title
      button.setAttribute('aria-current', String(session.id === state.sessionId))
      button.addEventListener('click', () => {
        ui.sessionList.classList.remove('open')
        ui.toggleSidebar.setAttribute('aria-expanded', 'false')
        openChosen(session.id)
      })
      item.append(button)
      return item
    }),
  )
}

export async function loadMoreSessions(reset = false): Promise<void> {
  if (state.loadingSessions || (!reset && state.cursor === null)) return
  state.loadingSessions = true
  ui.sessionMore.hidden = false
  try {
    const cursor = reset ? undefined : state.cursor
    const page = await api<{ sessions: Session[]; next_cursor: string | null }>(`/v1/sessions?limit=30${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
    state.sessions = reset ? page.sessions : [...state.sessions, ...page.sessions]
    state.cursor = page.next_cursor
    renderSessions()
    queueMicrotask(fillSessionList)
  } catch (error) {
    showError((error as Error).message)
  } finally {
    state.loadingSessions = false
    ui.sessionMore.hidden = true
  }
}

/** A visible list too short to scroll would never ask for its next page: ask now. */
export function fillSessionList(): void {
  const visible = ui.sessionList.offsetParent !== null
  if (visible && state.cursor && ui.sessionList.scrollHeight <= ui.sessionList.clientHeight) void loadMoreSessions()
}
