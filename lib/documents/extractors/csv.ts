import { extractText } from './text.ts'
import type { ExtractLimits, Extracted } from './section.ts'

/** RFC 4180 records: fields split on commas, quoted fields may hold commas, quotes ("") and line breaks. */
export function csvRecords(text: string): string[][] {
  const records: string[][] = []
  let record: string[] = []
  let field = ''
  let quoted = false
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') (field += '"'), index++
      else if (char === '"') quoted = false
      else field += char
    } else if (char === '"' && field === '') quoted = true
    else if (char === ',') record.push(field), (field = '')
    else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[index + 1] === '\n') index++
      record.push(field), records.push(record), (record = []), (field = '')
    } else field += char
  }
  if (field !== '' || record.length) record.push(field), records.push(record)
  return records.filter((fields) => fields.some((value) => value.trim() !== ''))
}

/**
 * A table as one line per row, each value named by its column ("name: Ada; born: 1815"), so a
 * chunk of rows still says what its values are.
 */
export function extractCsv(data: Uint8Array, limits: ExtractLimits): Extracted {
  const records = csvRecords(extractText(data, limits).sections[0]!.text)
  const [header = [], ...rows] = records
  const lines = rows.map((row) => row.map((value, index) => `${header[index]?.trim() || `column ${index + 1}`}: ${value.trim()}`).join('; '))
  // Rows one paragraph each: chunks are cut between rows.
  return { sections: [{ page: null, text: lines.join('\n\n') }], pages: null }
}
