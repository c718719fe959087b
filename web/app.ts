// The chat page: plain DOM, no framework. Replies are Markdown rendered by marked and sanitised
// by DOMPurify, so nothing a model or a user writes can run as script.
import DOMPurify from 'dompurify'
import { marked } from 'marked'

interface Session { id: string; title: string; updated_at: string; message_count: number }
interface Message { id: string; role: 'system' | 'user' | 'assistant'; content: string; status: string; model?: string }
interface Problem { status: number; detail: string; title: string }

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const ui = {
  banner: $<HTMLDivElement>('banner'),
  sessionList: $<HTMLUListElement>('session-list'),
  sessionMore: $<HTMLParagraphElement>('session-more'),
  toggleSidebar: $<HTMLButtonElement>('toggle-sidebar'),
  newChat: $<HTMLButtonElement>('new-chat'),
  title: $<HTMLHeadingElement>('chat-title'),
  model: $<HTMLSelectElement>('model'),
  rename: $<HTMLButtonElement>('rename'),
  remove: $<HTMLButtonElement>('delete'),
  systemRow: $<HTMLDivElement>('system-row'),
  system: $<HTMLTextAreaElement>('system'),
  messages: $<HTMLOListElement>('messages'),
  error: $<HTMLParagraphElement>('error'),
  composer: $<HTMLFormElement>('composer'),
  input: $<HTMLTextAreaElement>('input'),
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
  renameDialog: $<HTMLDialogElement>('rename-dialog'),
  renameInput: $<HTMLInputElement>('rename-input'),
  deleteDialog: $<HTMLDialogElement>('delete-dialog'),
}

const state = {
  sessionId: null as string | null,
  sessions: [] as Session[],
  cursor: null as string | null | undefined,
  loadingSessions: false,
  streaming: null as { sessionId: string; abort: AbortController } | null,
}

// ------------------------------------------------------------------ HTTP

class ProblemError extends Error {
  readonly problem: Problem
  readonly retryAfter: number | null
  constructor(problem: Problem, retryAfter: number | null) {
    super(problem.detail)
    this.problem = problem
    this.retryAfter = retryAfter
  }
}

async function problemOf(response: Response): Promise<ProblemError> {
  let problem: Problem = { status: response.status, title: response.statusText, detail: `The server answered ${response.status}.` }
  try {
    problem = await response.json()
  } catch {}
  const retryAfter = Number(response.headers.get('retry-after'))
  return new ProblemError(problem, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null)
}

const sleep = (seconds: number) => new Promise((resolve) => setTimeout(resolve, seconds * 1000))

/** A JSON request; 429 and 503 are retried after their Retry-After when `retry` allows it. */
async function api<T>(path: string, init: RequestInit = {}, retries = 2): Promise<T> {
  const response = await fetch(path, { ...init, headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers } })
  if (response.ok) return response.status === 204 ? (undefined as T) : response.json()
  const error = await problemOf(response)
  if (retries > 0 && (response.status === 429 || response.status === 503) && error.retryAfter) {
    showError(`${error.problem.detail} Retrying in ${error.retryAfter} s…`)
    await sleep(error.retryAfter)
    return api(path, init, retries - 1)
  }
  throw error
}

function showError(text: string | null): void {
  ui.error.hidden = !text
  ui.error.textContent = text ?? ''
}

// ------------------------------------------------------------------ rendering

function renderMarkdown(target: HTMLElement, text: string): void {
  const html = marked.parse(text, { async: false, gfm: true, breaks: false }) as string
  target.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true } })
  for (const link of target.querySelectorAll('a')) link.rel = 'noopener noreferrer'
  for (const block of target.querySelectorAll('pre')) {
    const copy = document.createElement('button')
    copy.type = 'button'
    copy.className = 'copy'
    copy.textContent = 'Copy'
    copy.setAttribute('aria-label', 'Copy code')
    copy.addEventListener('click', () => {
      void navigator.clipboard?.writeText(block.querySelector('code')?.textContent ?? block.textContent ?? '').then(() => (copy.textContent = 'Copied'))
    })
    block.append(copy)
  }
}

const STATUS_LABELS: Record<string, string> = { cancelled: 'Stopped', error: 'Failed', interrupted: 'Interrupted', streaming: 'Writing…' }

function messageElement(message: Pick<Message, 'role' | 'content' | 'status'> & { id?: string }): HTMLLIElement {
  const item = document.createElement('li')
  item.className = `message ${message.role}`
  if (message.id) item.dataset.id = message.id
  const body = document.createElement('div')
  body.className = 'body'
  item.append(body)
  setMessage(item, message.role, message.content, message.status)
  return item
}

function setMessage(item: HTMLLIElement, role: string, content: string, status: string): void {
  const body = item.querySelector<HTMLDivElement>('.body')!
  if (role === 'assistant') renderMarkdown(body, content)
  else body.textContent = content
  item.dataset.status = status
  let badge = item.querySelector<HTMLSpanElement>('.status')
  const label = STATUS_LABELS[status]
  if (label && !badge) {
    badge = document.createElement('span')
    item.append(badge)
  }
  if (badge) {
    if (!label) badge.remove()
    else {
      badge.className = `status ${status}`
      badge.textContent = label
    }
  }
}

function scrollToEnd(): void {
  ui.messages.scrollTop = ui.messages.scrollHeight
}

function renderSessions(): void {
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
        void openSession(session.id)
      })
      item.append(button)
      return item
    }),
  )
}

function setStreaming(streaming: boolean): void {
  ui.send.disabled = streaming
  ui.input.disabled = streaming
  ui.stop.hidden = !streaming
  ui.remove.disabled = streaming || !state.sessionId
  if (!streaming) ui.input.focus()
}

// ------------------------------------------------------------------ sessions

async function loadMoreSessions(reset = false): Promise<void> {
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
function fillSessionList(): void {
  const visible = ui.sessionList.offsetParent !== null
  if (visible && state.cursor && ui.sessionList.scrollHeight <= ui.sessionList.clientHeight) void loadMoreSessions()
}

async function openSession(id: string | null): Promise<void> {
  state.streaming?.abort.abort()
  state.streaming = null
  state.sessionId = id
  showError(null)
  ui.messages.replaceChildren()
  ui.systemRow.hidden = id !== null
  ui.rename.disabled = id === null
  ui.remove.disabled = id === null
  setStreaming(false)
  if (id === null) {
    ui.title.textContent = 'New chat'
    history.replaceState(null, '', '/')
    renderSessions()
    return
  }
  history.replaceState(null, '', `/#${id}`)
  renderSessions()
  try {
    const session = await api<Session>(`/v1/sessions/${id}`)
    ui.title.textContent = session.title
    const messages: Message[] = []
    let cursor: string | null = null
    do {
      const page: { messages: Message[]; next_cursor: string | null } = await api(`/v1/sessions/${id}/messages?limit=500${cursor ? `&cursor=${cursor}` : ''}`)
      messages.push(...page.messages)
      cursor = page.next_cursor
    } while (cursor)
    if (state.sessionId !== id) return
    ui.messages.replaceChildren(...messages.map(messageElement))
    scrollToEnd()
    const last = messages.at(-1)
    // A reply still being written (after a reload, or from another tab): follow it.
    if (last?.role === 'assistant' && last.status === 'streaming') void follow(id, ui.messages.lastElementChild as HTMLLIElement)
  } catch (error) {
    showError((error as Error).message)
  }
}

// ------------------------------------------------------------------ streaming

interface StreamEvent { type: string; content?: string; session_id?: string; message_id?: string; done_reason?: string; error?: string }

/** Reads an SSE body, calling `onEvent` for each event. */
async function readEvents(response: Response, onEvent: (event: StreamEvent) => void): Promise<void> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    let end: number
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block.split('\n').find((line) => line.startsWith('data: '))
      if (data) onEvent(JSON.parse(data.slice(6)))
    }
  }
}

/** Shows a reply growing in `item` from a stream's events; renders at most once a frame. */
function replyView(item: HTMLLIElement) {
  let text = ''
  let frame = 0
  const body = item.querySelector<HTMLDivElement>('.body')!
  body.setAttribute('aria-live', 'polite')
  body.setAttribute('aria-busy', 'true')
  const render = (status: string) => {
    frame = 0
    setMessage(item, 'assistant', text, status)
    scrollToEnd()
  }
  return {
    onEvent(event: StreamEvent): void {
      if (event.type === 'start') {
        text = ''
        if (event.message_id) item.dataset.id = event.message_id
      } else if (event.type === 'token') {
        text += event.content ?? ''
        frame ||= requestAnimationFrame(() => render('streaming'))
      } else if (event.type === 'done') {
        cancelAnimationFrame(frame)
        render(event.done_reason === 'cancelled' ? 'cancelled' : 'complete')
        body.setAttribute('aria-busy', 'false')
      } else if (event.type === 'error') {
        cancelAnimationFrame(frame)
        render('error')
        body.setAttribute('aria-busy', 'false')
        showError(event.error ?? 'The reply failed.')
      }
    },
  }
}

/** Marks a reply as streaming in `sessionId`; the controller stops reading it. */
function beginStreaming(sessionId: string): AbortController {
  const abort = new AbortController()
  state.streaming = { sessionId, abort }
  setStreaming(true)
  return abort
}

function endStreaming(abort: AbortController): void {
  if (state.streaming?.abort !== abort) return
  state.streaming = null
  setStreaming(false)
}

async function follow(sessionId: string, item: HTMLLIElement): Promise<void> {
  const abort = beginStreaming(sessionId)
  try {
    const response = await fetch(`/v1/sessions/${sessionId}/stream`, { signal: abort.signal })
    if (response.status === 404) {
      // It finished in between: show what was stored.
      if (state.sessionId === sessionId) void openSession(sessionId)
      return
    }
    if (!response.ok) throw await problemOf(response)
    await readEvents(response, replyView(item).onEvent)
  } catch (error) {
    if (!abort.signal.aborted) showError((error as Error).message)
  } finally {
    endStreaming(abort)
  }
}

async function send(text: string): Promise<void> {
  const isNew = state.sessionId === null
  const sessionId = state.sessionId ?? crypto.randomUUID()
  const system = isNew ? ui.system.value.trim() : ''
  showError(null)
  const userItem = messageElement({ role: 'user', content: text, status: 'complete' })
  const replyItem = messageElement({ role: 'assistant', content: '', status: 'streaming' })
  ui.messages.append(userItem, replyItem)
  scrollToEnd()
  if (isNew) {
    state.sessionId = sessionId
    ui.systemRow.hidden = true
    ui.rename.disabled = false
    history.replaceState(null, '', `/#${sessionId}`)
  }
  const abort = beginStreaming(sessionId)
  try {
    const body = JSON.stringify({ message: text, session_id: sessionId, model: ui.model.value || undefined, ...(system ? { system } : {}) })
    let response: Response
    for (let attempt = 0; ; attempt++) {
      response = await fetch('/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal })
      // 429 stores nothing, so sending again is safe. A 503 already stored the message: it is shown, not resent.
      if (response.status !== 429 || attempt >= 3) break
      const problem = await problemOf(response)
      showError(`${problem.problem.detail} Retrying in ${problem.retryAfter ?? 1} s…`)
      await sleep(problem.retryAfter ?? 1)
      showError(null)
    }
    if (!response.ok) {
      const problem = await problemOf(response)
      replyItem.remove()
      showError(problem.retryAfter ? `${problem.problem.detail} (try again in ${problem.retryAfter} s)` : problem.problem.detail)
      return
    }
    await readEvents(response, replyView(replyItem).onEvent)
  } catch (error) {
    if (!abort.signal.aborted) showError((error as Error).message)
  } finally {
    endStreaming(abort)
    await loadMoreSessions(true)
    if (state.sessionId === sessionId) {
      ui.title.textContent = state.sessions.find((session) => session.id === sessionId)?.title ?? ui.title.textContent
    }
  }
}

// ------------------------------------------------------------------ health and models

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

async function loadModels(): Promise<void> {
  try {
    const { models } = await api<{ models: Array<{ name: string }> }>('/v1/models')
    ui.model.replaceChildren(
      new Option('Default model', ''),
      ...models.map((model) => new Option(model.name, model.name)),
    )
  } catch {
    ui.model.replaceChildren(new Option('Default model', ''))
  }
}

// ------------------------------------------------------------------ events

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = ui.input.value
  if (!text.trim() || state.streaming) return
  ui.input.value = ''
  void send(text)
})
ui.input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    ui.composer.requestSubmit()
  }
})
ui.stop.addEventListener('click', () => {
  const sessionId = state.streaming?.sessionId
  if (sessionId) void api(`/v1/sessions/${sessionId}/cancel`, { method: 'POST' }).catch((error: Error) => showError(error.message))
})
ui.newChat.addEventListener('click', () => {
  void openSession(null)
  ui.input.focus()
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
ui.remove.addEventListener('click', () => ui.deleteDialog.showModal())
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

void checkHealth()
setInterval(() => void checkHealth(), 10_000)
void loadModels()
void loadMoreSessions(true).then(() => {
  const fromUrl = location.hash.slice(1)
  void openSession(/^[0-9a-f-]{36}$/i.test(fromUrl) ? fromUrl : null)
})
