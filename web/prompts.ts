// Saved prompts (docs/page.md): `/` at the start of the message box lists them, filtered as you
// type; arrows choose, Enter (or a click) puts one in the box, Escape closes. The Prompts dialog
// adds, changes and deletes them (GET/POST/PATCH/DELETE /v1/prompts).
import { api } from './api.ts'
import { showError, ui } from './dom.ts'

interface SavedPrompt { id: string; title: string; content: string }

let prompts: SavedPrompt[] | null = null
let shown: SavedPrompt[] = []
let active = 0
/** The prompt the dialog's form changes; null: it adds one. */
let editing: string | null = null

async function loadPrompts(): Promise<SavedPrompt[]> {
  prompts = (await api<{ prompts: SavedPrompt[] }>('/v1/prompts')).prompts
  return prompts
}

/** The words after a `/` that opens the box, or null when the box does not start with one. */
const query = (): string | null => {
  const match = /^\/([^\n]*)$/.exec(ui.input.value)
  return match ? match[1]!.trim().toLowerCase() : null
}

const isOpen = () => !ui.promptMenu.hidden

function close(): void {
  ui.promptMenu.hidden = true
  ui.input.removeAttribute('aria-activedescendant')
}

async function update(): Promise<void> {
  const words = query()
  if (words === null) return close()
  const all = prompts ?? (await loadPrompts().catch(() => []))
  if (query() === null) return close()
  shown = all.filter((prompt) => prompt.title.toLowerCase().includes(words))
  active = Math.min(active, Math.max(shown.length - 1, 0))
  render()
}

function render(): void {
  ui.promptMenu.replaceChildren(...(shown.length ? shown : [null]).map((prompt, index) => {
    const option = document.createElement('li')
    option.setAttribute('role', 'option')
    option.id = `prompt-option-${index}`
    if (!prompt) {
      option.textContent = prompts?.length ? 'No saved prompt has these words in its title' : 'No saved prompts yet: add some with Prompts in the sidebar'
      option.setAttribute('aria-disabled', 'true')
      return option
    }
    option.setAttribute('aria-selected', String(index === active))
    const title = Object.assign(document.createElement('strong'), { textContent: prompt.title })
    const text = Object.assign(document.createElement('span'), { className: 'muted', textContent: prompt.content.slice(0, 120) })
    option.append(title, text)
    // Chosen before the box loses focus.
    option.addEventListener('mousedown', (event) => {
      event.preventDefault()
      choose(prompt)
    })
    return option
  }))
  ui.promptMenu.hidden = false
  if (shown.length) ui.input.setAttribute('aria-activedescendant', `prompt-option-${active}`)
  else ui.input.removeAttribute('aria-activedescendant')
  ui.promptMenu.querySelector('[aria-selected=true]')?.scrollIntoView({ block: 'nearest' })
}

function choose(prompt: SavedPrompt): void {
  ui.input.value = prompt.content
  close()
  ui.input.dispatchEvent(new Event('input'))
  ui.input.focus()
  ui.input.setSelectionRange(prompt.content.length, prompt.content.length)
}

function renderManager(): void {
  ui.promptsList.replaceChildren(...(prompts ?? []).map((prompt) => {
    const item = document.createElement('li')
    const title = Object.assign(document.createElement('strong'), { textContent: prompt.title })
    const text = Object.assign(document.createElement('span'), { className: 'muted', textContent: prompt.content.slice(0, 200) })
    const edit = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Edit' })
    edit.setAttribute('aria-label', `Edit ${prompt.title}`)
    edit.addEventListener('click', () => {
      editing = prompt.id
      ui.promptTitle.value = prompt.title
      ui.promptContent.value = prompt.content
      ui.promptSave.textContent = 'Save changes'
      ui.promptTitle.focus()
    })
    const remove = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Delete' })
    remove.setAttribute('aria-label', `Delete ${prompt.title}`)
    remove.addEventListener('click', () => void api(`/v1/prompts/${prompt.id}`, { method: 'DELETE' }).then(refreshManager, (error: Error) => showError(error.message)))
    item.append(title, text, edit, remove)
    return item
  }))
  ui.promptsEmpty.hidden = (prompts ?? []).length > 0
}

async function refreshManager(): Promise<void> {
  await loadPrompts()
  renderManager()
}

function resetForm(): void {
  editing = null
  ui.promptTitle.value = ''
  ui.promptContent.value = ''
  ui.promptSave.textContent = 'Add prompt'
}

export function wirePrompts(): void {
  ui.input.addEventListener('input', () => void update())
  // Registered before the composer's: while the list is open, Enter chooses instead of sending.
  ui.input.addEventListener('keydown', (event) => {
    if (!isOpen()) return
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault()
      if (shown.length) active = (active + (event.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length
      render()
    } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey && shown[active]) {
      event.preventDefault()
      event.stopImmediatePropagation()
      choose(shown[active]!)
    } else if (event.key === 'Escape') {
      event.preventDefault()
      event.stopImmediatePropagation()
      close()
    }
  })
  ui.input.addEventListener('blur', close)

  ui.managePrompts.addEventListener('click', () => {
    resetForm()
    ui.promptsDialog.showModal()
    void refreshManager().catch((error: Error) => showError(error.message))
  })
  ui.promptForm.addEventListener('submit', (event) => {
    event.preventDefault()
    const body = JSON.stringify({ title: ui.promptTitle.value, content: ui.promptContent.value })
    const saved = editing ? api(`/v1/prompts/${editing}`, { method: 'PATCH', body }) : api('/v1/prompts', { method: 'POST', body })
    void saved.then(async () => {
      resetForm()
      await refreshManager()
      ui.promptTitle.focus()
    }, (error: Error) => {
      ui.promptsError.hidden = false
      ui.promptsError.textContent = error.message
    })
  })
  ui.promptForm.addEventListener('input', () => (ui.promptsError.hidden = true))
}
