import { getDocumentProxy } from 'unpdf'
import { ExtractError, type ExtractLimits, type Extracted, type Section } from './section.ts'

/**
 * A PDF's text page by page through pdf.js (unpdf's build for servers). Nothing in the file runs:
 * pdf.js never runs a PDF's JavaScript outside a viewer's scripting, and `isEvalSupported: false`
 * keeps it from compiling fonts into functions.
 */
export async function extractPdf(data: Uint8Array, limits: ExtractLimits): Promise<Extracted> {
  let document
  try {
    document = await getDocumentProxy(new Uint8Array(data), { isEvalSupported: false, disableFontFace: true, useSystemFonts: false, stopAtErrors: false, verbosity: 0 })
  } catch (error) {
    throw new ExtractError(`the PDF cannot be read: ${(error as Error).message}`)
  }
  try {
    if (document.numPages > limits.maxPages) throw new ExtractError(`the PDF has ${document.numPages} pages; at most ${limits.maxPages} are read`)
    const sections: Section[] = []
    let chars = 0
    for (let number = 1; number <= document.numPages; number++) {
      const page = await document.getPage(number)
      const content = await page.getTextContent()
      let text = ''
      for (const item of content.items) {
        if (!('str' in item)) continue
        text += item.str + (item.hasEOL ? '\n' : '')
      }
      page.cleanup()
      chars += text.length
      if (chars > limits.maxChars) throw new ExtractError(`the file's text is longer than ${limits.maxChars} characters`)
      // Lines that pdf.js ends are joined into paragraphs; an empty line stays a break.
      sections.push({ page: number, text: text.replace(/[ \t]+\n/g, '\n').trim() })
    }
    return { sections, pages: document.numPages }
  } finally {
    await document.destroy()
  }
}
