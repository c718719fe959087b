// This browser's preferences (docs/page.md "Preferences"): the theme, the key that sends, the text
// size. Kept in localStorage: they are about the screen in front of you, not the account.
import { ui } from './dom.ts'

export interface Preferences {
  theme: 'system' | 'light' | 'dark'
  sendWith: 'enter' | 'ctrl-enter'
  textSize: 'small' | 'medium' | 'large'
}

const KEY = 'chat-ollama.preferences'
const DEFAULTS: Preferences = { theme: 'system', sendWith: 'enter', textSize: 'medium' }
const CHOICES: { [K in keyof Preferences]: ReadonlyArray<Preferences[K]> } = {
  theme: ['system', 'light', 'dark'],
  sendWith: ['enter', 'ctrl-enter'],
  textSize: ['small', 'medium', 'large'],
}

/** What was saved, each value checked (an old or edited entry falls back to the default). */
function load(): Preferences {
  let saved: Record<string, unknown> = {}
  try {
    saved = JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {}
  } catch {}
  const valid = <K extends keyof Preferences>(key: K): Preferences[K] =>
    (CHOICES[key] as readonly unknown[]).includes(saved[key]) ? (saved[key] as Preferences[K]) : DEFAULTS[key]
  return { theme: valid('theme'), sendWith: valid('sendWith'), textSize: valid('textSize') }
}

export const preferences: Preferences = load()

export function applyPreferences(): void {
  const root = document.documentElement
  if (preferences.theme === 'system') delete root.dataset.theme
  else root.dataset.theme = preferences.theme
  if (preferences.textSize === 'medium') delete root.dataset.textSize
  else root.dataset.textSize = preferences.textSize
  ui.input.placeholder = preferences.sendWith === 'enter'
    ? 'Send a message (Enter sends, Shift+Enter adds a line; paste or drop images)'
    : 'Send a message (Ctrl+Enter sends, Enter adds a line; paste or drop images)'
}

/** Whether this key press in a message box sends it, as the preference says. */
export function sends(event: KeyboardEvent): boolean {
  if (event.key !== 'Enter' || event.isComposing || event.shiftKey) return false
  return preferences.sendWith === 'enter' || event.ctrlKey || event.metaKey
}

/** The Preferences dialog: each change applies at once and is kept. */
export function wirePreferences(): void {
  applyPreferences()
  const fields = { theme: ui.preferTheme, sendWith: ui.preferSendWith, textSize: ui.preferTextSize }
  ui.preferences.addEventListener('click', () => {
    for (const [key, field] of Object.entries(fields)) field.value = preferences[key as keyof Preferences]
    ui.preferencesDialog.showModal()
  })
  for (const [key, field] of Object.entries(fields)) {
    field.addEventListener('change', () => {
      Object.assign(preferences, { [key]: field.value })
      applyPreferences()
      try {
        localStorage.setItem(KEY, JSON.stringify(preferences))
      } catch {}
    })
  }
}
