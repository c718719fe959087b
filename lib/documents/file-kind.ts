import type { FileKind } from '../store/document-store.ts'

const MEDIA_TYPES: Record<FileKind, string> = {
  pdf: 'application/pdf',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  markdown: 'text/markdown',
  text: 'text/plain',
  html: 'text/html',
  csv: 'text/csv',
}

export const mediaTypeOf = (kind: FileKind): string => MEDIA_TYPES[kind]

const startsWith = (data: Uint8Array, text: string) => data.byteLength >= text.length && [...text].every((char, index) => data[index] === char.charCodeAt(0))

/** Whether the bytes read as UTF-8 text (no NUL, valid UTF-8) in their first 64 KiB. */
function looksLikeText(data: Uint8Array): boolean {
  const head = data.subarray(0, 65_536)
  if (head.includes(0)) return false
  try {
    // A sequence cut at the end of the head is not a fault.
    new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.byteLength === data.byteLength ? undefined : head.byteLength - 4))
    return true
  } catch {
    return false
  }
}

/**
 * What kind of document the bytes are, from their signature first and the name second: a PDF
 * starts `%PDF-`; a DOCX is a ZIP named .docx; text is HTML, Markdown or CSV by its name (or HTML
 * by its start), else plain text. Undefined for anything else (an image, an archive, a program).
 */
export function fileKindOf(data: Uint8Array, filename: string): FileKind | undefined {
  const extension = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase() ?? ''
  if (startsWith(data, '%PDF-')) return 'pdf'
  if (startsWith(data, 'PK\x03\x04')) return extension === 'docx' ? 'docx' : undefined
  if (!looksLikeText(data)) return undefined
  if (['html', 'htm', 'xhtml'].includes(extension)) return 'html'
  if (['md', 'markdown', 'mdx'].includes(extension)) return 'markdown'
  if (extension === 'csv') return 'csv'
  const head = new TextDecoder().decode(data.subarray(0, 512)).trimStart().toLowerCase()
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'html'
  return 'text'
}
