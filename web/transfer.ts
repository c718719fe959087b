// Export all chats and import a file (README "Export and import"): the server does the work; the
// page sends the file as it is (JSON Lines, as "Export all" writes them, become a JSON array).
import { problemOf } from './api.ts'
import { ui } from './dom.ts'
import { loadMoreSessions } from './sidebar.ts'

interface ImportResult {
  imported: Array<{ session_id: string; title: string; messages: number }>
  skipped: Array<{ index: number; reason: string }>
}

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
    const unreadable = result.skipped.length - duplicates
    const parts = [`Imported ${result.imported.length} chat${result.imported.length === 1 ? '' : 's'}`]
    if (duplicates) parts.push(`${duplicates} already here`)
    if (unreadable) parts.push(`${unreadable} unreadable (${result.skipped.find((skip) => skip.reason !== 'duplicate')!.reason})`)
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
