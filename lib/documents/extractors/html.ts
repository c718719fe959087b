import { Readability } from '@mozilla/readability'
import { parseHTML } from 'linkedom'
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

/**
 * A web page's title and main content as Markdown (fetch_url): Readability finds the article in
 * the parsed page (no script runs); a page that is not one (a listing, a form) is taken whole, its
 * scripts, styles and navigation left out.
 */
export function readablePage(data: Uint8Array, charset: string | undefined): { title: string; text: string } {
  let html: string
  try {
    html = new TextDecoder(charset ?? 'utf-8').decode(data)
  } catch {
    html = new TextDecoder('utf-8').decode(data)
  }
  const { document } = parseHTML(html)
  const title = document.querySelector('title')?.textContent?.trim() ?? ''
  const article = new Readability(document as never, { charThreshold: 200 }).parse()
  if (!article?.content) return { title, text: htmlToMarkdown(html) }
  return { title: article.title?.trim() || title, text: htmlToMarkdown(article.content) }
}
