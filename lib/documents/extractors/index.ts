import type { FileKind } from '../../store/document-store.ts'
import { extractCsv } from './csv.ts'
import { extractDocx } from './docx.ts'
import { extractHtml } from './html.ts'
import { extractPdf } from './pdf.ts'
import type { ExtractLimits, Extracted } from './section.ts'
import { extractText } from './text.ts'

/** One extractor per kind of file: a new kind is one file and one line here. */
export const EXTRACTORS: Record<FileKind, (data: Uint8Array, limits: ExtractLimits) => Extracted | Promise<Extracted>> = {
  pdf: extractPdf,
  docx: extractDocx,
  html: extractHtml,
  csv: extractCsv,
  markdown: extractText,
  text: extractText,
}
