/**
 * The import file's worker thread (lib/conversations/import-file.ts starts it): it decodes and parses the
 * file once, reads each conversation of it (lib/conversations/import.ts) when asked, and hands
 * over its messages a chunk at a time, so the server's thread only ever holds a chunk.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { ImportedConversation, ImportedMessage } from '../store/chat-store.ts'
import { isKnownFormat, readConversation, Unreadable, type ImportLimits } from './import.ts'

/** What the server thread asks: the conversation at `index`, or the chunk of the current one's messages from `from`. */
export type ImportRequest = { index: number } | { from: number }

/**
 * A chunk: what one short transaction writes (each message's text is indexed for search as it is
 * stored, so the text counts as much as the number; an image's base64 counts as text, so a message
 * with images is mostly a chunk of its own).
 */
export const CHUNK_MESSAGES = 50
export const CHUNK_CHARS = 32_000

const port = parentPort!
const { bytes, maxDepth, limits } = workerData as { bytes: Uint8Array; maxDepth: number; limits: ImportLimits }

/** Why a parsed value cannot be stored, checked without recursion: nesting past `maxDepth`, U+0000. */
function unfit(value: unknown): string | null {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length) {
    const [at, depth] = stack.pop()!
    if (typeof at === 'string') {
      if (at.includes('\0')) return 'holds the character U+0000, which cannot be stored'
    } else if (at !== null && typeof at === 'object') {
      if (depth >= maxDepth) return `is nested deeper than ${maxDepth} levels`
      if (!Array.isArray(at) && Object.keys(at).some((key) => key.includes('\0'))) return 'holds the character U+0000, which cannot be stored'
      for (const inner of Object.values(at)) stack.push([inner, depth + 1])
    }
  }
  return null
}

let items: unknown[] = []
let current: ImportedConversation | undefined
try {
  const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  const shape = Array.isArray(parsed) ? 'array' : parsed !== null && typeof parsed === 'object' ? 'object' : 'other'
  items = Array.isArray(parsed) ? parsed : [parsed]
  port.postMessage({ shape, count: items.length })
} catch (error) {
  port.postMessage({ error: error instanceof TypeError ? 'The body is not valid UTF-8.' : `The body is not valid JSON: ${(error as Error).message}` })
}

port.on('message', (request: ImportRequest) => {
  if ('from' in request) {
    const { messages } = current!
    let to = request.from
    const sizeOf = (message: ImportedMessage) => message.content.length + (message.imageTexts ?? []).reduce((sum, image) => sum + image.length, 0)
    for (let chars = 0; to < messages.length && to - request.from < CHUNK_MESSAGES && (chars < CHUNK_CHARS || to === request.from); to++) chars += sizeOf(messages[to]!)
    port.postMessage(messages.slice(request.from, to))
    return
  }
  const item = items[request.index]
  items[request.index] = undefined
  const known = isKnownFormat(item)
  const why = unfit(item)
  if (why) {
    port.postMessage({ known, unfit: why })
    return
  }
  try {
    current = readConversation(item, limits)
    port.postMessage({ known, conversation: { ...current, messages: [] }, messageCount: current.messages.length })
  } catch (error) {
    if (!(error instanceof Unreadable)) throw error
    port.postMessage({ known, unfit: error.message })
  }
})
