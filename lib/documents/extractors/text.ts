import { checkedLength, ExtractError, type ExtractLimits, type Extracted } from './section.ts'

/** UTF-8 text as it is (plain text and Markdown); a BOM is dropped, bytes that are not UTF-8 refuse the file. */
export function extractText(data: Uint8Array, limits: ExtractLimits): Extracted {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data)
  } catch {
    throw new ExtractError('the file is not UTF-8 text')
  }
  return { sections: [{ page: null, text: checkedLength(text.replaceAll('\0', ''), limits) }], pages: null }
}
