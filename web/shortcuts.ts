// Keyboard shortcuts (docs/page.md), listed in their sheet (? or Ctrl+/). Escape (stop a reply)
// is the composer's; Enter and Shift+Enter the message boxes'.
import { state, ui } from './dom.ts'
import { copied, messageText } from './render.ts'

/** Typing in a field: plain keys (such as ?) are its text, not shortcuts. */
const typing = (target: EventTarget | null) => target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))

/** Ctrl, or Cmd on a Mac. */
const command = (event: KeyboardEvent) => event.ctrlKey || event.metaKey

export function wireShortcuts(actions: { newChat(): void }): void {
  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.isComposing || document.querySelector('dialog[open]')) return
    const key = event.key.toLowerCase()
    const run = (action: () => void) => {
      event.preventDefault()
      action()
    }
    if ((event.key === '?' && !typing(event.target) && !command(event)) || (command(event) && !event.shiftKey && key === '/')) run(() => ui.shortcutsDialog.showModal())
    else if (command(event) && event.shiftKey && key === 'o') run(actions.newChat)
    else if (command(event) && !event.shiftKey && key === 'k') run(() => ui.search.focus())
    else if (event.shiftKey && event.key === 'Escape') run(() => ui.input.focus())
    else if (command(event) && event.shiftKey && key === 'y') run(copyLastReply)
    else if (command(event) && event.shiftKey && key === 's') run(toggleChats)
  })
}

/** The last reply's text, as written, to the clipboard; its Copy button says so. */
function copyLastReply(): void {
  const replies = ui.messages.querySelectorAll<HTMLLIElement>('li.message.assistant')
  const last = replies[replies.length - 1]
  if (!last) return
  void navigator.clipboard?.writeText(messageText(last)).then(() => {
    const button = last.querySelector<HTMLButtonElement>('[data-action="copy"]')
    if (button) copied(button)
  }, () => {})
}

/** Wide: the sidebar hides and comes back; narrow: the chats list opens and closes (as the Chats button). */
function toggleChats(): void {
  if (ui.toggleSidebar.offsetParent !== null) {
    ui.toggleSidebar.click()
    return
  }
  const hidden = ui.layout.classList.toggle('sidebar-hidden')
  if (!hidden && state.sessions.length === 0) ui.newChat.focus()
}
