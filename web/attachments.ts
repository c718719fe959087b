// Images for the next message: the Image… button, paste, or drag and drop onto the composer;
// thumbnails (each with a remove button) until the message is sent. The server checks them again.
import { showError, ui } from './dom.ts'

const ACCEPTED = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif'])
/** The largest file the server takes by default (MAX_IMAGE_BYTES). */
const MAX_BYTES = 10 * 1024 * 1024

/** Data URLs of the images attached, in order. */
const pending: string[] = []

function readAsDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => resolve(String(reader.result))
    reader.onerror = () => reject(reader.error ?? new Error(`${file.name} could not be read.`))
    reader.readAsDataURL(file)
  })
}

function showPending(): void {
  ui.attachments.hidden = pending.length === 0
  ui.attachments.replaceChildren(...pending.map((url, index) => {
    const item = document.createElement('li')
    const thumbnail = document.createElement('img')
    thumbnail.className = 'thumbnail'
    thumbnail.src = url
    thumbnail.alt = `Image ${index + 1} to send`
    const remove = document.createElement('button')
    remove.type = 'button'
    remove.textContent = '×'
    remove.setAttribute('aria-label', `Remove image ${index + 1}`)
    remove.addEventListener('click', () => {
      pending.splice(index, 1)
      showPending()
    })
    item.append(thumbnail, remove)
    return item
  }))
}

async function attach(files: Iterable<File>): Promise<void> {
  for (const file of files) {
    if (!ACCEPTED.has(file.type)) {
      showError(`${file.name || 'That file'} is not a PNG, JPEG, WebP or GIF image.`)
      continue
    }
    if (file.size > MAX_BYTES) {
      showError(`${file.name || 'That image'} is larger than 10 MiB.`)
      continue
    }
    pending.push(await readAsDataUrl(file))
  }
  showPending()
}

/** The images attached so far, for the message being sent; the composer is emptied of them. */
export function takeAttachments(): string[] {
  const taken = pending.splice(0)
  showPending()
  return taken
}

/** Puts images back (their message was refused before anything was stored). */
export function restoreAttachments(images: string[]): void {
  pending.unshift(...images)
  showPending()
}

export function wireAttachments(): void {
  ui.attach.addEventListener('change', () => {
    void attach([...(ui.attach.files ?? [])]).catch((error: Error) => showError(error.message))
    ui.attach.value = ''
  })
  ui.input.addEventListener('paste', (event) => {
    const images = [...(event.clipboardData?.files ?? [])].filter((file) => file.type.startsWith('image/'))
    if (images.length === 0) return
    event.preventDefault()
    void attach(images).catch((error: Error) => showError(error.message))
  })
  ui.composer.addEventListener('dragover', (event) => {
    if (!event.dataTransfer?.types.includes('Files')) return
    event.preventDefault()
    ui.composer.classList.add('dropping')
  })
  ui.composer.addEventListener('dragleave', () => ui.composer.classList.remove('dropping'))
  ui.composer.addEventListener('drop', (event) => {
    ui.composer.classList.remove('dropping')
    if (!event.dataTransfer?.files.length) return
    event.preventDefault()
    void attach([...event.dataTransfer.files]).catch((error: Error) => showError(error.message))
  })
}
