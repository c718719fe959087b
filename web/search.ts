// The search box above the chat list: results as you type, each opening its chat at the message.
import { api } from './api.ts'
import { showError, ui } from './dom.ts'

interface SearchResult {
  session_id: string
  session_title: string
  message_id: string | null
  role: string | null
  snippet: string
  highlights: Array<[number, number]>
}

/** Waits this long after the last key before searching. */
const TYPING_PAUSE_MS = 200

/** The snippet as text nodes, its matched words in <mark>: nothing in it is ever parsed as HTML. */
function snippetElement(result: SearchResult): HTMLSpanElement {
  const span = document.createElement('span')
  span.className = 'snippet'
  let at = 0
  for (const [start, end] of result.highlights) {
    span.append(result.snippet.slice(at, start))
    const mark = document.createElement('mark')
    mark.textContent = result.snippet.slice(start, end)
    span.append(mark)
    at = end
  }
  span.append(result.snippet.slice(at))
  return span
}

/** Wires the search box; `open` opens a chat and, when given, shows that message. */
export function wireSearch(open: (sessionId: string, messageId: string | null) => void): void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let asked = 0
  const search = async () => {
    const q = ui.search.value.trim()
    const mine = ++asked
    if (!q) {
      ui.searchResults.hidden = true
      ui.searchResults.replaceChildren()
      return
    }
    try {
      const { results } = await api<{ results: SearchResult[] }>(`/v1/search?q=${encodeURIComponent(q)}&limit=20`)
      // An answer to an older query that came late is not shown.
      if (mine !== asked) return
      ui.searchResults.replaceChildren(...(results.length ? results.map((result) => {
        const item = document.createElement('li')
        const button = document.createElement('button')
        button.type = 'button'
        const title = document.createElement('strong')
        title.textContent = result.session_title
        button.append(title, snippetElement(result))
        // Which message it opens at (none: a title's hit).
        if (result.message_id) button.dataset.messageId = result.message_id
        button.addEventListener('click', () => open(result.session_id, result.message_id))
        item.append(button)
        return item
      }) : [Object.assign(document.createElement('li'), { className: 'muted', textContent: 'No chat has these words.' })]))
      ui.searchResults.hidden = false
    } catch (error) {
      showError((error as Error).message)
    }
  }
  ui.search.addEventListener('input', () => {
    clearTimeout(timer)
    timer = setTimeout(() => void search(), TYPING_PAUSE_MS)
  })
  ui.search.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape') return
    ui.search.value = ''
    void search()
  })
}
