// Documents (docs/documents.md): upload files, see each one read and embedded, group them in
// collections, and choose what the chat answers from. A new chat sends its choice with its first
// message (the chat keeps it); an open chat's choice is saved with PATCH.
import { api, problemOf } from './api.ts'
import { showError, state, ui, type ChatSettings } from './dom.ts'

interface DocumentFile { id: string; filename: string; kind: string; ingestion: { status: 'in_progress' | 'completed' | 'failed'; chunks_done: number; chunks_total: number | null; last_error: string | null } }
interface Collection { id: string; name: string; file_count: number }

/** What the chat answers from: the open chat's, or what a new chat will send with its first message. */
const chosen = { files: [] as string[], collections: [] as string[] }
/** Names of what is chosen, for the chip in the composer. */
const names = new Map<string, string>()
let polling = 0

/** What a new chat's first turn sends; nothing for an open chat (it keeps its own). */
export function documentsChoice(): { files?: string[]; collections?: string[] } {
  if (state.settings !== null) return {}
  return { ...(chosen.files.length ? { files: chosen.files } : {}), ...(chosen.collections.length ? { collections: chosen.collections } : {}) }
}

/** Takes the open chat's documents (null: a new chat, which starts with none chosen). */
export function showDocuments(settings: ChatSettings | null): void {
  chosen.files = settings?.files ?? []
  chosen.collections = settings?.collections ?? []
  showChip()
  void refreshNames().then(showChip, () => {})
}

function showChip(): void {
  const shown = [...chosen.files, ...chosen.collections].map((id) => names.get(id)).filter((name): name is string => name !== undefined)
  ui.documentsChip.hidden = shown.length === 0
  ui.documentsChip.textContent = shown.length ? `Answers from: ${shown.join(', ')}` : ''
}

async function refreshNames(): Promise<void> {
  if (chosen.files.length + chosen.collections.length === 0) return
  const [files, collections] = await Promise.all([api<{ data: DocumentFile[] }>('/v1/files'), api<{ collections: Collection[] }>('/v1/collections')])
  for (const file of files.data) names.set(file.id, file.filename)
  for (const collection of collections.collections) names.set(collection.id, collection.name)
}

function stateOf(file: DocumentFile): string {
  const { status, chunks_done, chunks_total, last_error } = file.ingestion
  if (status === 'completed') return 'Ready'
  if (status === 'failed') return `Failed: ${last_error ?? 'it could not be read'}`
  return chunks_total ? `Reading… ${chunks_done}/${chunks_total}` : 'Reading…'
}

/** A checkbox row, checked when `id` is chosen. */
function row(id: string, label: string, kind: 'file' | 'collection', checked: boolean): HTMLLIElement {
  const item = document.createElement('li')
  item.dataset.id = id
  const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked, id: `use-${id}` })
  box.dataset.kind = kind
  const text = Object.assign(document.createElement('label'), { htmlFor: box.id, textContent: label })
  item.append(box, text)
  return item
}

/** Fills the dialog's lists; while a file is being read, asks again each second. */
async function render(): Promise<void> {
  const [files, collections] = await Promise.all([api<{ data: DocumentFile[] }>('/v1/files'), api<{ collections: Collection[] }>('/v1/collections')])
  // What the user checked and has not saved yet stays checked across refreshes.
  const checked = new Set([...ui.documentsDialog.querySelectorAll<HTMLInputElement>('input[type=checkbox]')].filter((box) => box.checked).map((box) => box.closest('li')!.dataset.id!))
  const isChecked = (id: string, saved: string[]) => (ui.documentsFiles.childElementCount + ui.documentsCollections.childElementCount ? checked.has(id) : saved.includes(id))
  ui.documentsFiles.replaceChildren(...files.data.map((file) => {
    names.set(file.id, file.filename)
    const item = row(file.id, file.filename, 'file', isChecked(file.id, chosen.files))
    item.classList.toggle('failed', file.ingestion.status === 'failed')
    const remove = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Delete', className: 'link' })
    remove.setAttribute('aria-label', `Delete ${file.filename}`)
    remove.addEventListener('click', () => void api(`/v1/files/${file.id}`, { method: 'DELETE' }).then(render, (error: Error) => showStatus(error.message)))
    item.append(Object.assign(document.createElement('span'), { className: 'state', textContent: stateOf(file) }), remove)
    return item
  }))
  ui.documentsCollections.replaceChildren(...collections.collections.map((collection) => {
    names.set(collection.id, collection.name)
    const item = row(collection.id, collection.name, 'collection', isChecked(collection.id, chosen.collections))
    item.append(Object.assign(document.createElement('span'), { className: 'state', textContent: `${collection.file_count} ${collection.file_count === 1 ? 'file' : 'files'}` }))
    return item
  }))
  clearTimeout(polling)
  if (ui.documentsDialog.open && files.data.some((file) => file.ingestion.status === 'in_progress')) polling = window.setTimeout(() => void render(), 1000)
}

function showStatus(text: string): void {
  ui.documentsStatus.textContent = text
}

async function upload(files: FileList | File[]): Promise<void> {
  for (const file of files) {
    showStatus(`Uploading ${file.name}…`)
    const form = new FormData()
    form.append('purpose', 'assistants')
    form.append('file', file, file.name)
    const response = await fetch('/v1/files', { method: 'POST', body: form })
    if (!response.ok) {
      const body = await response.clone().json().catch(() => null) as { error?: { message?: string } } | null
      showStatus(body?.error?.message ?? (await problemOf(response)).problem.detail)
      continue
    }
    const uploaded = await response.json() as DocumentFile
    // A file uploaded here is one the user wants to use.
    await render()
    const box = document.getElementById(`use-${uploaded.id}`) as HTMLInputElement | null
    if (box) box.checked = true
    showStatus(`${file.name} uploaded: it is read and embedded in the background.`)
  }
  await render()
}

const checkedOf = (kind: 'file' | 'collection') =>
  [...ui.documentsDialog.querySelectorAll<HTMLInputElement>(`input[type=checkbox][data-kind=${kind}]`)].filter((box) => box.checked).map((box) => box.closest('li')!.dataset.id!)

export function wireDocuments(): void {
  ui.documents.addEventListener('click', () => {
    showStatus('')
    ui.documentsFiles.replaceChildren()
    ui.documentsCollections.replaceChildren()
    ui.documentsDialog.returnValue = ''
    ui.documentsDialog.showModal()
    void render().catch((error: Error) => showStatus(error.message))
  })
  ui.documentsUpload.addEventListener('change', () => {
    const files = [...(ui.documentsUpload.files ?? [])]
    ui.documentsUpload.value = ''
    void upload(files)
  })
  ui.documentsDrop.addEventListener('dragover', (event) => {
    event.preventDefault()
    ui.documentsDrop.classList.add('dragging')
  })
  ui.documentsDrop.addEventListener('dragleave', () => ui.documentsDrop.classList.remove('dragging'))
  ui.documentsDrop.addEventListener('drop', (event) => {
    event.preventDefault()
    ui.documentsDrop.classList.remove('dragging')
    if (event.dataTransfer?.files.length) void upload(event.dataTransfer.files)
  })
  ui.documentsCollectionCreate.addEventListener('click', () => {
    const name = ui.documentsCollectionName.value.trim()
    if (!name) return showStatus('Name the collection first.')
    const files = checkedOf('file')
    void (async () => {
      const collection = await api<Collection>('/v1/collections', { method: 'POST', body: JSON.stringify({ name }) })
      for (const file of files) await api(`/v1/collections/${collection.id}/files`, { method: 'POST', body: JSON.stringify({ file_id: file }) })
      ui.documentsCollectionName.value = ''
      await render()
      const box = document.getElementById(`use-${collection.id}`) as HTMLInputElement | null
      if (box) box.checked = true
      showStatus(`Collection ${name} made of ${files.length} ${files.length === 1 ? 'file' : 'files'}.`)
    })().catch((error: Error) => showStatus(error.message))
  })
  ui.documentsDialog.addEventListener('close', () => {
    clearTimeout(polling)
    if (ui.documentsDialog.returnValue !== 'ok') return
    chosen.files = checkedOf('file')
    chosen.collections = checkedOf('collection')
    showChip()
    const id = state.sessionId
    if (id === null || state.settings === null) return
    void api<ChatSettings>(`/v1/sessions/${id}`, { method: 'PATCH', body: JSON.stringify({ files: chosen.files, collections: chosen.collections }) })
      .then((saved) => state.sessionId === id && (state.settings = saved), (error: Error) => showError(error.message))
  })
}
