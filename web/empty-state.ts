// A new chat's empty state: the model it will talk to, prompts to start from, and what it can
// use (your documents, the server's tools), each said plainly.
import { api } from './api.ts'
import { state, ui } from './dom.ts'
import { toolNames } from './tools.ts'

const EXAMPLES = [
  'Explain how HTTPS keeps a password secret, in simple words',
  'Write a short, polite email declining a meeting',
  'Give me a week of quick vegetarian dinners',
  'Why would a JavaScript fetch hang, and how do I find out?',
]

let documentCount: number | null = null

/** Draws it for the chat shown: only a new chat, before its first message (CSS hides it after). */
export function renderEmptyState(): void {
  ui.emptyState.hidden = state.sessionId !== null
  if (ui.emptyState.hidden) return
  const heading = document.createElement('h2')
  heading.id = 'empty-heading'
  heading.append('Chat with ', Object.assign(document.createElement('strong'), { textContent: ui.model.value || state.defaultModel || 'the default model' }))
  const examples = document.createElement('ul')
  examples.className = 'examples'
  examples.setAttribute('aria-label', 'Example prompts')
  for (const text of EXAMPLES) {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = text
    // Put in the box, not sent: the user finishes it.
    button.addEventListener('click', () => {
      ui.input.value = text
      ui.input.dispatchEvent(new Event('input'))
      ui.input.focus()
    })
    const item = document.createElement('li')
    item.append(button)
    examples.append(item)
  }
  const abilities = document.createElement('ul')
  abilities.className = 'abilities'
  const tools = toolNames()
  abilities.append(
    ability(documentCount
      ? `${documentCount} document${documentCount === 1 ? '' : 's'} of yours: choose which this chat answers from with Documents.`
      : 'Documents: upload PDFs, Word files or notes with Documents, and the chat answers from them with sources.'),
    ability(tools.length
      ? `Tools (switch Tools on to use them): ${tools.join(', ')}.`
      : 'No tools are configured on this server (see docs/tools.md).'),
  )
  ui.emptyState.replaceChildren(heading, Object.assign(document.createElement('p'), { textContent: 'Start from one of these, or write your own:' }), examples, abilities)
}

const ability = (text: string) => Object.assign(document.createElement('li'), { textContent: text })

/** Asks again how many documents there are (a new chat may answer from any), then draws it. */
export async function refreshEmptyState(): Promise<void> {
  renderEmptyState()
  if (state.sessionId !== null) return
  try {
    documentCount = (await api<{ data: unknown[] }>('/v1/files')).data.length
  } catch {
    documentCount = null
  }
  renderEmptyState()
}
