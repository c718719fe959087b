// Export all chats and import a file (docs/api.md "Export and import"): the server does the work; the
// page sends the file as it is (JSON Lines, as "Export all" writes them, become a JSON array).
import { problemOf } from './api.ts'
import { ui } from './dom.ts'
import { loadMoreSessions } from './sidebar.ts'

interface ImportResult {
  imported: Array<{ session_id: string; title: string; messages: number }>
  /** Chats imported before that the file has grown (ChatGPT's exports hold every chat, each as it is now). */
  updated: Array<{ session_id: string; title: string; messages_added: number }>
  skipped: Array<{ index: number; reason: string }>
}

/** Unreadable conversations named one by one in the result line; more are counted. */
const MAX_REASONS = 5

function showResult(text: string): void {
  ui.importResult.hidden = false
  ui.importResult.textContent = text
}

async function importFile(file: File): Promise<void> {
  showResult(`Importing ${file.name}…`)
  // JSON Lines: one export a line, joined into the array POST /v1/import takes (never parsed here).
  const body = /\.jsonl$/i.test(file.name) ? `[${(await file.text()).split('\n').filter((line) => line.trim()).join(',')}]` : file
  try {
    const response = await fetch('/v1/import', { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    if (!response.ok) {
      showResult((await problemOf(response)).problem.detail)
      return
    }
    const result = (await response.json()) as ImportResult
    const duplicates = result.skipped.filter((skip) => skip.reason === 'duplicate').length
    const unreadable = result.skipped.filter((skip) => skip.reason !== 'duplicate')
    const parts = [`Imported ${result.imported.length} chat${result.imported.length === 1 ? '' : 's'}`]
    if (result.updated.length) {
      const added = result.updated.reduce((sum, chat) => sum + chat.messages_added, 0)
      parts.push(`${result.updated.length} brought up to date (${added} new message${added === 1 ? '' : 's'})`)
    }
    if (duplicates) parts.push(`${duplicates} already here`)
    if (unreadable.length) {
      // Each one with its place in the file and why, the first few of a long list.
      const shown = unreadable.slice(0, MAX_REASONS).map((skip) => `#${skip.index + 1} ${skip.reason}`)
      if (unreadable.length > MAX_REASONS) shown.push(`and ${unreadable.length - MAX_REASONS} more`)
      parts.push(`${unreadable.length} unreadable: ${shown.join('; ')}`)
    }
    showResult(`${parts.join('; ')}.`)
    await loadMoreSessions(true)
  } catch (error) {
    showResult((error as Error).message)
  }
}

export function wireTransfer(): void {
  ui.importFile.addEventListener('change', () => {
    const file = ui.importFile.files?.[0]
    ui.importFile.value = ''
    if (file) void importFile(file)
  })
}
