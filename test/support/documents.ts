/**
 * Documents made in the tests (never copied from anywhere): a PDF of text pages, a DOCX, a ZIP
 * writer for both a real DOCX and a zip bomb, and waiting for a file's ingestion to end.
 */
import { crc32, deflateRawSync } from 'node:zlib'
import type { AppContext } from '../../lib/context.ts'
import { within } from './app.ts'

const escapePdf = (text: string) => text.replace(/[\\()]/g, (char) => `\\${char}`)

/**
 * A PDF with one page per entry of `pages`, each line of a page drawn in Helvetica, with a
 * correct cross-reference table. `circular` makes the page tree its own child (a hostile file).
 */
export function makePdf(pages: string[][], { circular = false } = {}): Uint8Array {
  const objects: string[] = []
  const pageIds = pages.map((_, index) => 4 + index * 2)
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>'
  const kids = circular ? '2 0 R' : pageIds.map((id) => `${id} 0 R`).join(' ')
  objects[2] = `<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'
  pages.forEach((lines, index) => {
    const stream = `BT /F1 12 Tf 72 720 Td 14 TL ${lines.map((line) => `(${escapePdf(line)}) Tj T*`).join(' ')} ET`
    objects[pageIds[index]!] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${pageIds[index]! + 1} 0 R >>`
    objects[pageIds[index]! + 1] = `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`
  })
  let body = '%PDF-1.4\n'
  const offsets: number[] = []
  for (let id = 1; id < objects.length; id++) {
    offsets[id] = body.length
    body += `${id} 0 obj\n${objects[id]}\nendobj\n`
  }
  const xref = body.length
  body += `xref\n0 ${objects.length}\n0000000000 65535 f \n${offsets.slice(1).map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('')}`
  body += `trailer\n<< /Size ${objects.length} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return new TextEncoder().encode(body)
}

/** A ZIP of `entries` (deflated), with its central directory: what a DOCX is. */
export function makeZip(entries: Record<string, Uint8Array | string>): Uint8Array {
  const locals: Buffer[] = []
  const centrals: Buffer[] = []
  let offset = 0
  for (const [name, content] of Object.entries(entries)) {
    const data = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content)
    const compressed = deflateRawSync(data)
    const nameBytes = Buffer.from(name)
    const crc = crc32(data)
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(8, 8)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(compressed.length, 18)
    local.writeUInt32LE(data.length, 22)
    local.writeUInt16LE(nameBytes.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE(20, 4)
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(8, 10)
    central.writeUInt32LE(crc, 16)
    central.writeUInt32LE(compressed.length, 20)
    central.writeUInt32LE(data.length, 24)
    central.writeUInt16LE(nameBytes.length, 28)
    central.writeUInt32LE(offset, 42)
    locals.push(local, nameBytes, compressed)
    centrals.push(central, nameBytes)
    offset += local.length + nameBytes.length + compressed.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(Object.keys(entries).length, 8)
  end.writeUInt16LE(Object.keys(entries).length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return new Uint8Array(Buffer.concat([...locals, directory, end]))
}

const xmlEscape = (text: string) => text.replace(/[<>&]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[char]!)

/** A Word document of headings (`# ` lines, one level) and paragraphs, with the styles that name its headings. */
export function makeDocx(lines: string[]): Uint8Array {
  const paragraphs = lines.map((line) => line.startsWith('# ')
    ? `<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>${xmlEscape(line.slice(2))}</w:t></w:r></w:p>`
    : `<w:p><w:r><w:t xml:space="preserve">${xmlEscape(line)}</w:t></w:r></w:p>`).join('')
  const w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
  return makeZip({
    '[Content_Types].xml': `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/></Types>`,
    '_rels/.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
    'word/_rels/document.xml.rels': `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`,
    'word/styles.xml': `<?xml version="1.0" encoding="UTF-8"?><w:styles ${w}><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style></w:styles>`,
    'word/document.xml': `<?xml version="1.0" encoding="UTF-8"?><w:document ${w}><w:body>${paragraphs}</w:body></w:document>`,
  })
}

/** A ZIP named like a DOCX whose one part inflates to `bytes` of zeros (a zip bomb). */
export function makeZipBomb(bytes: number): Uint8Array {
  return makeZip({ 'word/document.xml': new Uint8Array(bytes) })
}

/** Uploads `data` as `filename` to POST /v1/files (multipart, as the SDKs send it). */
export function uploadRequest(url: string, data: Uint8Array | string, filename: string, headers: Record<string, string> = {}): Promise<Response> {
  const form = new FormData()
  form.append('purpose', 'assistants')
  form.append('file', new Blob([data]), filename)
  return fetch(`${url}/v1/files`, { method: 'POST', body: form, headers })
}

/** The file once its ingestion has ended (completed or failed), told by the ingestion itself, not by polling. */
export async function ingested(app: AppContext, id: string, ownerId = 'local'): Promise<NonNullable<Awaited<ReturnType<AppContext['database']['documents']['getFile']>>>> {
  const ended = new Promise<void>((resolve) => {
    const listener = (event: Event) => {
      if ((event as CustomEvent).detail.id !== id) return
      app.ingestion.finished.removeEventListener('file', listener)
      resolve()
    }
    app.ingestion.finished.addEventListener('file', listener)
    // Ended before the listener was there: the stored status says so.
    void app.database.documents.getFile(id, ownerId).then((file) => file?.status !== 'in_progress' && resolve())
  })
  await within(30_000, `the ingestion of ${id}`, ended)
  return (await app.database.documents.getFile(id, ownerId))!
}
