// The chats sidebar: pinned chats, folders (dropped into by dragging, or with "Folder…"), the rest
// grouped by date and paged through its cursor as it scrolls, and the archived chats on request.
import { api } from './api.ts'
import { showError, state, ui, type Session } from './dom.ts'

interface Folder { name: string; count: number }

let openChosen: (id: string) => void = () => {}
let pinned: Session[] = []
let folders: Folder[] = []
/** The chats of each folder shown open, loaded when it opens. */
const folderChats = new Map<string, Session[]>()
const DRAGGED = 'application/x-chat-id'

/** What a click on a chat in the list does (the conversation's openSession, wired by the entry). */
export function onSessionChosen(open: (id: string) => void): void {
  openChosen = open
}

/** The group a chat's last activity puts it in, as the chat apps people know group them. */
export function dateGroup(updatedAt: string, now = new Date()): string {
  const day = (date: Date) => new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime()
  const days = Math.round((day(now) - day(new Date(updatedAt))) / 86_400_000)
  if (days <= 0) return 'Today'
  if (days === 1) return 'Yesterday'
  if (days <= 7) return 'Previous 7 days'
  if (days <= 30) return 'Previous 30 days'
  return 'Older'
}

function chatItem(session: Session): HTMLLIElement {
  const item = document.createElement('li')
  item.className = 'chat-item'
  item.draggable = true
  item.dataset.id = session.id
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
  item.addEventListener('dragstart', (event) => {
    event.dataTransfer!.setData(DRAGGED, session.id)
    event.dataTransfer!.effectAllowed = 'move'
  })
  item.append(button)
  return item
}

function group(heading: string, items: HTMLElement[], className = 'chat-group'): HTMLLIElement {
  const item = document.createElement('li')
  item.className = className
  const title = document.createElement('h2')
  title.textContent = heading
  const list = document.createElement('ul')
  list.append(...items)
  item.append(title, list)
  return item
}

/** Makes `target` take a dragged chat: `change` is the PATCH that moves it there. */
function dropTarget(target: HTMLElement, change: Record<string, unknown>): void {
  target.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes(DRAGGED)) return
    event.preventDefault()
    target.classList.add('drop-here')
  })
  target.addEventListener('dragleave', () => target.classList.remove('drop-here'))
  target.addEventListener('drop', (event) => {
    target.classList.remove('drop-here')
    const id = event.dataTransfer?.getData(DRAGGED)
    if (!id) return
    event.preventDefault()
    void organise(id, change)
  })
}

function folderItem(folder: Folder): HTMLLIElement {
  const item = document.createElement('li')
  item.className = 'folder'
  const toggle = document.createElement('button')
  toggle.type = 'button'
  toggle.className = 'folder-toggle'
  toggle.dataset.folder = folder.name
  const chats = folderChats.get(folder.name)
  toggle.setAttribute('aria-expanded', String(chats !== undefined))
  toggle.textContent = `${folder.name} (${folder.count})`
  toggle.addEventListener('click', () => void toggleFolder(folder.name))
  dropTarget(toggle, { folder: folder.name })
  item.append(toggle)
  if (chats) {
    const list = document.createElement('ul')
    list.append(...chats.map(chatItem))
    item.append(list)
  }
  return item
}

export function renderSessions(): void {
  if (state.archivedView) {
    const back = document.createElement('button')
    back.type = 'button'
    back.id = 'archived-back'
    back.textContent = '← Back to chats'
    back.addEventListener('click', () => void showArchived(false))
    const head = document.createElement('li')
    head.className = 'archived-head'
    head.append(back)
    ui.sessionList.replaceChildren(head, group('Archived chats', state.sessions.map(chatItem)))
    return
  }
  const groups: HTMLLIElement[] = []
  if (pinned.length) groups.push(group('Pinned', pinned.map(chatItem)))
  if (folders.length) groups.push(group('Folders', folders.map(folderItem), 'chat-group folders'))
  const byDate = new Map<string, HTMLLIElement[]>()
  for (const session of state.sessions) {
    const name = dateGroup(session.updated_at)
    byDate.set(name, [...(byDate.get(name) ?? []), chatItem(session)])
  }
  for (const [name, items] of byDate) {
    const dated = group(name, items)
    // Dropped on the dated chats: out of its folder.
    dropTarget(dated, { folder: null })
    groups.push(dated)
  }
  ui.sessionList.replaceChildren(...groups)
}

async function toggleFolder(name: string): Promise<void> {
  if (folderChats.has(name)) folderChats.delete(name)
  else await loadFolder(name)
  renderSessions()
  // The list was drawn anew: focus stays on the folder's button.
  ui.sessionList.querySelector<HTMLButtonElement>(`.folder-toggle[data-folder="${CSS.escape(name)}"]`)?.focus()
}

async function loadFolder(name: string): Promise<void> {
  const page = await api<{ sessions: Session[] }>(`/v1/sessions?limit=200&folder=${encodeURIComponent(name)}`)
  folderChats.set(name, page.sessions)
}

/** Pins, archives or files a chat, then shows the lists as they now are. */
export async function organise(id: string, change: Record<string, unknown>): Promise<Session | undefined> {
  try {
    const session = await api<Session>(`/v1/sessions/${id}`, { method: 'PATCH', body: JSON.stringify(change) })
    await loadMoreSessions(true)
    return session
  } catch (error) {
    showError((error as Error).message)
    return undefined
  }
}

/** Shows the archived chats (or the chats again). */
export async function showArchived(archived: boolean): Promise<void> {
  state.archivedView = archived
  ui.showArchived.setAttribute('aria-pressed', String(archived))
  await loadMoreSessions(true)
  const focus = archived ? ui.sessionList.querySelector<HTMLButtonElement>('#archived-back') : ui.showArchived
  focus?.focus()
}

export async function loadMoreSessions(reset = false): Promise<void> {
  if (state.loadingSessions || (!reset && state.cursor === null)) return
  state.loadingSessions = true
  ui.sessionMore.hidden = false
  try {
    const cursor = reset ? undefined : state.cursor
    const filter = state.archivedView ? 'archived=true' : 'pinned=false&folder='
    const [page] = await Promise.all([
      api<{ sessions: Session[]; next_cursor: string | null }>(`/v1/sessions?limit=30&${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
      reset && !state.archivedView ? loadOrganised() : undefined,
    ])
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

/** The pinned chats, the folders, and the chats of each folder shown open. */
async function loadOrganised(): Promise<void> {
  const [pinnedPage, folderList] = await Promise.all([
    api<{ sessions: Session[] }>('/v1/sessions?limit=200&pinned=true'),
    api<{ folders: Folder[] }>('/v1/folders'),
  ])
  pinned = pinnedPage.sessions
  folders = folderList.folders
  const open = [...folderChats.keys()]
  folderChats.clear()
  await Promise.all(open.filter((name) => folders.some((folder) => folder.name === name)).map(loadFolder))
}

/** Every chat the sidebar knows of, wherever it is listed. */
export const knownSessions = (): Session[] => [...pinned, ...[...folderChats.values()].flat(), ...state.sessions]

/** A visible list too short to scroll would never ask for its next page: ask now. */
export function fillSessionList(): void {
  const visible = ui.sessionList.offsetParent !== null
  if (visible && state.cursor && ui.sessionList.scrollHeight <= ui.sessionList.clientHeight) void loadMoreSessions()
}
