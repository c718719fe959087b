import mammoth from 'mammoth'
import { htmlToMarkdown } from './html.ts'
import { checkedLength, ExtractError, type ExtractLimits, type Extracted } from './section.ts'

/**
 * What the parts of a ZIP declare they hold once decompressed, read from its central directory
 * before anything is inflated: a zip bomb is refused unopened (the thread's memory limit bounds
 * one that lies about its sizes).
 */
export function declaredUnzippedBytes(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  // The end-of-central-directory record: within the last 65,557 bytes (22 and a comment).
  let end = -1
  for (let at = data.byteLength - 22; at >= Math.max(0, data.byteLength - 65_557); at--) {
    if (view.getUint32(at, true) === 0x06054b50) {
      end = at
      break
    }
  }
  if (end < 0) throw new ExtractError('the file is not a DOCX: its ZIP directory is missing')
  const entries = view.getUint16(end + 10, true)
  let at = view.getUint32(end + 16, true)
  let total = 0
  for (let entry = 0; entry < entries; entry++) {
    if (at + 46 > data.byteLength || view.getUint32(at, true) !== 0x02014b50) throw new ExtractError('the file is not a DOCX: its ZIP directory is damaged')
    const size = view.getUint32(at + 24, true)
    // 0xFFFFFFFF: the real size is in a ZIP64 field; a document needs no part that large.
    total += size === 0xffffffff ? Number.MAX_SAFE_INTEGER : size
    at += 46 + view.getUint16(at + 28, true) + view.getUint16(at + 30, true) + view.getUint16(at + 32, true)
  }
  return total
}

/** A Word document through mammoth (its headings, paragraphs, lists and tables), as Markdown. */
export async function extractDocx(data: Uint8Array, limits: ExtractLimits): Promise<Extracted> {
  const unzipped = declaredUnzippedBytes(data)
  if (unzipped > limits.maxUnzippedBytes) {
    throw new ExtractError(`the DOCX decompresses to more than ${limits.maxUnzippedBytes} bytes`)
  }
  let html: string
  try {
    ;({ value: html } = await mammoth.convertToHtml({ buffer: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }, { convertImage: mammoth.images.imgElement(async () => ({ src: '' })) }))
  } catch (error) {
    throw new ExtractError(`the DOCX cannot be read: ${(error as Error).message}`)
  }
  return { sections: [{ page: null, text: checkedLength(htmlToMarkdown(html), limits) }], pages: null }
}
