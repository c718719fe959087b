import type { NewChunk } from '../store/document-store.ts'
import type { Section } from './extractors/section.ts'

/** About 400 tokens (at ~4 characters a token): a few paragraphs, within every embedding model's context. */
export const CHUNK_CHARS = 1600
/** The end of one chunk repeated at the start of the next, so a sentence cut between them is whole in one. */
export const OVERLAP_CHARS = 200

const HEADING = /^(#{1,6})\s+(.+?)\s*#*\s*$/

/** `text` cut into pieces of at most `size` characters: at line ends, else sentence ends, else spaces, else anywhere. */
function pieces(text: string, size: number): string[] {
  if (text.length <= size) return [text]
  for (const separator of [/\n/, /(?<=[.!?])\s+/, /\s+/]) {
    const parts = text.split(separator).filter(Boolean)
    if (parts.length < 2) continue
    const out: string[] = []
    let current = ''
    for (const part of parts) {
      if (current && current.length + 1 + part.length > size) {
        out.push(current)
        current = ''
      }
      if (part.length > size) out.push(...pieces(part, size))
      else current = current ? `${current} ${part}` : part
    }
    if (current) out.push(current)
    return out
  }
  return Array.from({ length: Math.ceil(text.length / size) }, (_, index) => text.slice(index * size, (index + 1) * size))
}

/** The last `chars` characters of `text`, from a word's start. */
function tail(text: string, chars: number): string {
  if (text.length <= chars) return text
  const cut = text.slice(-chars)
  const space = cut.search(/\s/)
  return space < 0 ? cut : cut.slice(space + 1)
}

/**
 * A file's text in chunks that follow its structure: a chunk never spans two pages or two
 * sections (a heading starts a new one), holds whole paragraphs where they fit within
 * CHUNK_CHARS, begins with the end of the previous one (OVERLAP_CHARS) within a section, and
 * keeps the page and the headings it sits under ("Guide > Install > Linux").
 */
export function chunkSections(sections: Section[], size = CHUNK_CHARS, overlap = OVERLAP_CHARS): NewChunk[] {
  const chunks: NewChunk[] = []
  const headings: string[] = []
  for (const section of sections) {
    let current = ''
    let carried = ''
    const flush = () => {
      if (current.trim() && current !== carried) chunks.push({ position: chunks.length, page: section.page, heading: headings.filter(Boolean).join(' > ') || null, content: current.trim() })
      carried = ''
      current = ''
    }
    const blocks = section.text.split(/\n[ \t]*\n/).map((block) => block.trim()).filter(Boolean)
    for (const block of blocks) {
      const [first = '', ...rest] = block.split('\n')
      const heading = HEADING.exec(first)
      if (heading) {
        flush()
        const level = heading[1]!.length
        headings.length = level
        headings[level - 1] = heading[2]!
        if (rest.length === 0) continue
      }
      const body = heading ? rest.join('\n') : block
      for (const piece of pieces(body, size - overlap)) {
        if (current && current.length + 2 + piece.length > size) {
          const previous = current
          flush()
          carried = current = tail(previous, overlap)
        }
        current = current ? `${current}\n\n${piece}` : piece
      }
    }
    flush()
  }
  return chunks
}
