// Rendering messages: Markdown by marked, sanitised by DOMPurify, so nothing a model or a user
// writes can run as script.
import DOMPurify from 'dompurify'
import { marked } from 'marked'
import { imageThumbnails, showError, ui, type ContextCut, type Message, type Source } from './dom.ts'
import type { StreamEvent } from './sse-reader.ts'
import { addCall, addStepText, askApproval, askInput, inputAnswered, setProgress, setResult, setResultImages } from './tools.ts'

const toolCallOf = (event: StreamEvent) => ({ call_id: event.call_id!, name: event.name ?? '', arguments: event.arguments ?? {} })

/** highlight.js, fetched the first time a finished reply holds code. */
let highlighter: Promise<typeof import('./highlight.ts')> | undefined

function renderMarkdown(target: HTMLElement, text: string, final: boolean): void {
  const html = marked.parse(text, { async: false, gfm: true, breaks: false }) as string
  // No forms or controls: a reply must not be able to pose as the page and ask for a key.
  target.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['form', 'input', 'button', 'textarea', 'select', 'option', 'optgroup', 'fieldset', 'dialog'] })
  for (const link of target.querySelectorAll('a')) link.rel = 'noopener noreferrer'
  // An image a reply wrote without a description still says what it is to a screen reader.
  for (const image of target.querySelectorAll('img:not([alt])')) image.setAttribute('alt', 'An image in the reply')
  for (const block of target.querySelectorAll('pre')) {
    const copy = document.createElement('button')
    copy.type = 'button'
    copy.className = 'copy'
    copy.textContent = 'Copy'
    copy.setAttribute('aria-label', 'Copy code')
    copy.addEventListener('click', () => {
      void navigator.clipboard?.writeText(block.querySelector('code')?.textContent ?? block.textContent ?? '').then(() => copied(copy), () => {})
    })
    // The block's language as marked wrote it (```python), shown beside Copy; not part of the code.
    const language = /(?:^|\s)language-([\w+#.-]{1,30})/.exec(block.querySelector('code')?.className ?? '')?.[1]
    if (language) block.append(Object.assign(document.createElement('span'), { className: 'code-language', textContent: language, ariaHidden: 'true' }))
    block.append(copy)
  }
  // Highlighted once the reply is whole: a block still growing would be highlighted at every frame.
  if (final && target.querySelector('pre code')) {
    highlighter ??= import('./highlight.ts')
    void highlighter.then((module) => target.isConnected && module.highlightCode(target), () => {})
  }
}

const STATUS_LABELS: Record<string, string> = { cancelled: 'Stopped', error: 'Failed', interrupted: 'Interrupted', streaming: 'Writing…', awaiting_approval: 'Waiting for your approval' }

/**
 * The divider where the model's memory of the chat begins: before the first message it is still
 * sent (Long conversations), or none while it is sent everything.
 */
export function showContextCut(cut: ContextCut | null): void {
  ui.messages.querySelector('.context-cut')?.remove()
  const first = cut && ui.messages.querySelector<HTMLLIElement>(`li.message[data-id="${CSS.escape(cut.first_sent_message_id)}"]`)
  if (!first) return
  const divider = document.createElement('li')
  divider.className = 'context-cut'
  divider.textContent = cut.summarized ? 'Earlier messages are summarized for the model' : 'Earlier messages are not sent to the model'
  first.before(divider)
}

/** What each message says, as written (the copy button copies this, not the rendered HTML). */
const rawText = new WeakMap<HTMLLIElement, string>()
export const messageText = (item: HTMLLIElement): string => rawText.get(item) ?? ''

type Shown = Pick<Message, 'role' | 'content' | 'status' | 'images'> & Partial<Pick<Message, 'thinking' | 'thinking_ms' | 'model' | 'tokens_per_second' | 'sources' | 'rating' | 'done_reason'>> & { id?: string; sibling_ids?: string[] | undefined }

export function messageElement(message: Shown): HTMLLIElement {
  const item = document.createElement('li')
  item.className = `message ${message.role}`
  if (message.id) item.dataset.id = message.id
  if (message.images?.length) item.append(imageThumbnails(message.images))
  if (message.thinking) setThinking(item, message.thinking, message.thinking_ms ?? null)
  const body = document.createElement('div')
  body.className = 'body'
  item.append(body)
  if (message.role === 'assistant' && message.model) setFigures(item, message.model, message.tokens_per_second ?? null)
  if (message.sources?.length) setSources(item, message.sources)
  if (message.role !== 'system') item.append(actionsOf(message.role, message.id, message.sibling_ids ?? [], message.rating))
  if (message.done_reason) item.dataset.doneReason = message.done_reason
  setMessage(item, message.role, message.content, message.status)
  return item
}

/**
 * A reply's reasoning, folded above its answer (open on click): "Thinking…" while it comes, then
 * "Thought for N s". Plain text: reasoning is not rendered as Markdown.
 */
function setThinking(item: HTMLLIElement, text: string, thinkingMs: number | null | 'thinking'): void {
  let block = item.querySelector<HTMLDetailsElement>('details.thinking')
  if (!block) {
    block = document.createElement('details')
    block.className = 'thinking'
    block.append(document.createElement('summary'), Object.assign(document.createElement('div'), { className: 'thinking-text' }))
    const body = item.querySelector('.body')
    if (body) body.before(block)
    else item.append(block)
  }
  block.querySelector('summary')!.textContent = thinkingMs === 'thinking'
    ? 'Thinking…'
    : thinkingMs === null ? 'Thought' : `Thought for ${thinkingMs < 1000 ? 'less than a second' : `${Math.round(thinkingMs / 1000)} s`}`
  block.querySelector('.thinking-text')!.textContent = text
}

/** Under a reply: the model that wrote it, and its speed once known. */
function setFigures(item: HTMLLIElement, model: string, tokensPerSecond: number | null): void {
  let line = item.querySelector<HTMLParagraphElement>('.figures')
  if (!line) {
    line = document.createElement('p')
    line.className = 'figures'
    item.querySelector('.body')!.after(line)
  }
  line.textContent = tokensPerSecond === null ? model : `${model} · ${tokensPerSecond} tokens/s`
}

/**
 * Under a reply: the documents and web pages it was given, numbered as it cites them. A document
 * links to the file (a download) with its page and section; a web page to itself (a new tab, no
 * referrer), with its site.
 */
function setSources(item: HTMLLIElement, sources: Source[]): void {
  item.querySelector('.sources')?.remove()
  const list = document.createElement('ol')
  list.className = 'sources'
  list.setAttribute('aria-label', 'Sources')
  for (const source of sources) {
    const entry = document.createElement('li')
    entry.value = source.n
    if ('url' in source) {
      // Only http(s) links: a page's address is the model's or a site's text.
      const web = /^https?:/i.test(source.url) ? new URL(source.url) : null
      const link = Object.assign(document.createElement('a'), { textContent: source.title, title: source.snippet, ...(web ? { href: web.href, target: '_blank', rel: 'noopener noreferrer nofollow' } : {}) })
      entry.className = 'web-source'
      entry.append(link, ...(web ? [' ', Object.assign(document.createElement('span'), { className: 'site', textContent: web.hostname })] : []))
    } else {
      const link = Object.assign(document.createElement('a'), { href: `/v1/files/${encodeURIComponent(source.file_id)}/content`, textContent: source.filename, title: source.snippet })
      link.setAttribute('download', source.filename)
      const where = [source.page === null ? null : `page ${source.page}`, source.heading].filter(Boolean).join(', ')
      entry.append(link, ...(where ? [` (${where})`] : []))
    }
    list.append(entry)
  }
  const body = item.querySelector('.body')!
  ;(item.querySelector('.figures') ?? body).after(list)
}

/**
 * A question left without a reply (Ollama was down when it was sent): "Send again" asks for its
 * reply (web/branches.ts answers the click).
 */
export function offerAnswer(question: HTMLLIElement): void {
  const bar = question.querySelector('.actions')
  if (!bar || bar.querySelector('[data-action="answer"]')) return
  bar.prepend(actionButton('Send again', 'answer', 'Send this message again for a reply'))
}

function actionButton(label: string, action: string, title: string, target?: string): HTMLButtonElement {
  const button = document.createElement('button')
  button.type = 'button'
  button.textContent = label
  button.title = title
  // A word's name is the word itself (what speech input users say); only the ‹ › glyphs need one.
  if (action === 'sibling') button.setAttribute('aria-label', title)
  button.dataset.action = action
  if (target) button.dataset.target = target
  else if (action === 'sibling') button.disabled = true
  return button
}

/**
 * A message's buttons (web/branches.ts answers their clicks): "‹ 2/3 ›" between its versions when
 * it has siblings, Edit (a question) or Regenerate (a reply), and Copy.
 */
function actionsOf(role: string, id: string | undefined, siblings: string[], rating: Message['rating']): HTMLDivElement {
  const bar = document.createElement('div')
  bar.className = 'actions'
  bar.setAttribute('role', 'toolbar')
  bar.setAttribute('aria-label', role === 'user' ? 'Your message' : 'The reply')
  const index = id ? siblings.indexOf(id) : -1
  if (siblings.length > 1 && index >= 0) {
    const position = document.createElement('span')
    position.className = 'siblings'
    position.textContent = `${index + 1}/${siblings.length}`
    bar.append(actionButton('‹', 'sibling', 'Previous version', siblings[index - 1]), position, actionButton('›', 'sibling', 'Next version', siblings[index + 1]))
  }
  if (role === 'user') bar.append(actionButton('Edit', 'edit', 'Edit this message and ask again'))
  if (role === 'assistant') bar.append(actionButton('Regenerate', 'regenerate', 'Write this reply again'))
  bar.append(actionButton('Copy', 'copy', 'Copy this message'))
  if (role === 'assistant') {
    bar.append(actionButton('Read aloud', 'read-aloud', 'Read this reply aloud (again to stop)'))
    for (const [label, value] of [['Good', 'up'], ['Bad', 'down']] as const) {
      const button = actionButton(label, 'rate', label === 'Good' ? 'A good reply' : 'A bad reply')
      button.dataset.rating = value
      button.setAttribute('aria-pressed', String(rating === value))
      bar.append(button)
    }
  }
  return bar
}

/** A Copy button says "Copied" for a moment, then "Copy" again. */
export function copied(button: HTMLButtonElement): void {
  button.textContent = 'Copied'
  setTimeout(() => (button.textContent = 'Copy'), COPIED_MS)
}
const COPIED_MS = 1500

export function setMessage(item: HTMLLIElement, role: string, content: string, status: string): void {
  const body = item.querySelector<HTMLDivElement>('.body')!
  rawText.set(item, content)
  if (role === 'assistant') renderMarkdown(body, content, status !== 'streaming')
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
  if (role === 'assistant') offerContinue(item, content, status)
}

/** Replies that ended before their end: stopped, failed, interrupted, or cut at the token limit. */
const CUT_STATUSES = new Set(['cancelled', 'error', 'interrupted'])

/**
 * A stored reply that was cut short has Continue: a new version that goes on from its text
 * (web/branches.ts answers the click).
 */
function offerContinue(item: HTMLLIElement, content: string, status: string): void {
  const bar = item.querySelector('.actions')
  const cut = CUT_STATUSES.has(status) || (status === 'complete' && item.dataset.doneReason === 'length')
  const offered = Boolean(bar && item.dataset.id && content.trim() && cut)
  const button = bar?.querySelector('[data-action="continue"]')
  if (offered && !button) bar!.querySelector('[data-action="regenerate"]')?.after(actionButton('Continue', 'continue', 'Go on from where this reply was cut'))
  if (!offered) button?.remove()
}

/** Whether the view is at the end of the conversation: only then does a streaming reply pull it along. */
let atEnd = true
/** How near the end still counts as at it (a reader a few pixels up is at the end). */
const AT_END_PX = 40

export function scrollToEnd(): void {
  ui.messages.scrollTop = ui.messages.scrollHeight
  atEnd = true
  ui.jumpLatest.hidden = true
}

/** New text came in: followed when the reader is at the end; else the view stays, and "Jump to latest" shows. */
function followEnd(): void {
  if (atEnd) scrollToEnd()
  else ui.jumpLatest.hidden = false
}

/** The reader's scrolling decides whether replies are followed; "Jump to latest" goes back to the end. */
export function wireScrolling(): void {
  ui.messages.addEventListener('scroll', () => {
    const { scrollTop, scrollHeight, clientHeight } = ui.messages
    atEnd = scrollHeight - scrollTop - clientHeight < AT_END_PX
    ui.jumpLatest.hidden = atEnd
  }, { passive: true })
  ui.jumpLatest.addEventListener('click', () => {
    scrollToEnd()
    ui.input.focus()
  })
}

/**
 * Shows a reply growing in `item` from a stream's events; renders at most once a frame. Its tool
 * calls fold above its text; `resume` follows it once its waiting calls are answered.
 */
export function replyView(item: HTMLLIElement, resume: (item: HTMLLIElement) => void) {
  let text = ''
  let thinking = ''
  let model = ''
  let frame = 0
  const body = item.querySelector<HTMLDivElement>('.body')!
  body.setAttribute('aria-live', 'polite')
  body.setAttribute('aria-busy', 'true')
  const render = (status: string) => {
    frame = 0
    setMessage(item, 'assistant', text, status)
    followEnd()
  }
  return {
    onEvent(event: StreamEvent): void {
      if (event.type === 'start') {
        text = ''
        thinking = ''
        model = event.model ?? ''
        if (event.message_id) item.dataset.id = event.message_id
        if (model) setFigures(item, model, null)
      } else if (event.type === 'sources') {
        setSources(item, event.sources ?? [])
      } else if (event.type === 'thinking') {
        thinking += event.content ?? ''
        setThinking(item, thinking, 'thinking')
      } else if (event.type === 'token') {
        if (thinking && !text) setThinking(item, thinking, null)
        text += event.content ?? ''
        frame ||= requestAnimationFrame(() => render('streaming'))
      } else if (event.type === 'tool_call') {
        // What the model wrote so far goes with its calls; the answer comes after them.
        addStepText(item, text)
        text = ''
        cancelAnimationFrame(frame)
        render('streaming')
        addCall(item, toolCallOf(event))
      } else if (event.type === 'input_required') {
        askInput(item, event.session_id!, { input_id: event.input_id!, call_id: event.call_id!, name: event.name ?? '', message: event.message ?? '', requested_schema: event.requested_schema ?? {} })
      } else if (event.type === 'input_answered') {
        inputAnswered(item, event.call_id!, event.action ?? '')
      } else if (event.type === 'tool_progress') {
        setProgress(item, event.call_id!, { progress: event.progress ?? 0, total: event.total, message: event.message })
      } else if (event.type === 'tool_result') {
        setResult(item, event.call_id!, { ok: event.ok === true, content: event.content ?? '', duration_ms: event.duration_ms })
      } else if (event.type === 'tool_images') {
        setResultImages(item, event.call_id!, event.images ?? [])
      } else if (event.type === 'approval_required') {
        askApproval(item, event.session_id!, toolCallOf(event), () => resume(item))
      } else if (event.type === 'done') {
        if (event.done_reason) item.dataset.doneReason = event.done_reason
        if (thinking) setThinking(item, thinking, event.thinking_ms ?? null)
        if (model) setFigures(item, model, event.tokens_per_second ?? null)
        cancelAnimationFrame(frame)
        render(event.done_reason === 'cancelled' || event.done_reason === 'awaiting_approval' ? event.done_reason : 'complete')
        body.setAttribute('aria-busy', 'false')
      } else if (event.type === 'error') {
        cancelAnimationFrame(frame)
        render('error')
        body.setAttribute('aria-busy', 'false')
        showError(event.error ?? 'The reply failed.')
      } else if (event.type === 'reconnect') {
        // The instance we followed through is stopping; the reply runs on elsewhere: follow it again (its stream ends now).
        setTimeout(() => resume(item), 1000)
      }
    },
  }
}
