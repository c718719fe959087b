/** Text as an extractor gives it: Markdown-like (headings as `#` lines), with the page it is on. */
export interface Section {
  page: number | null
  text: string
}

export interface Extracted {
  sections: Section[]
  /** Pages of a paged format (PDF); null for the others. */
  pages: number | null
}

/** What bounds an extraction besides its thread's memory and time (docs/documents.md "Limits"). */
export interface ExtractLimits {
  maxPages: number
  maxChars: number
  /** What the parts of a DOCX (a ZIP) may declare, decompressed, together. */
  maxUnzippedBytes: number
}

/** Why a file cannot be read: becomes its `last_error`. */
export class ExtractError extends Error {
  override name = 'ExtractError'
}

/** Text past the character limit is refused, not cut: a file is read whole or not at all. */
export function checkedLength(text: string, limits: ExtractLimits): string {
  if (text.length > limits.maxChars) throw new ExtractError(`the file's text is longer than ${limits.maxChars} characters`)
  return text
}
