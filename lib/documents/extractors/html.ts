import { NodeHtmlMarkdown } from 'node-html-markdown'
import { extractText } from './text.ts'
import { checkedLength, type ExtractLimits, type Extracted } from './section.ts'

/** An HTML document as Markdown: headings, paragraphs, lists and tables kept; scripts, styles and markup dropped (nothing runs). */
export function htmlToMarkdown(html: string): string {
  return NodeHtmlMarkdown.translate(html, { ignore: ['script', 'style', 'noscript', 'template', 'iframe', 'object', 'svg', 'head', 'nav', 'footer'] })
}

export function extractHtml(data: Uint8Array, limits: ExtractLimits): Extracted {
  const html = extractText(data, limits).sections[0]!.text
  return { sections: [{ page: null, text: checkedLength(htmlToMarkdown(html), limits) }], pages: null }
}
