/**
 * Images as text in a JSON body (a base64 data URL, or bare base64 in an `images` list), and the
 * bytes that stand for them once a worker decoded them (lib/images/image-body-worker.ts).
 */

/** The key of an image decoded off the event loop: its bytes. JSON cannot hold it (U+0000 in a key is refused), so no client can forge one. */
export const ENCODED_IMAGE = '\u0000image'
/** Beside ENCODED_IMAGE: the bytes' SHA-256, which stands for them in a request's fingerprint. */
export const IMAGE_DIGEST = '\u0000sha256'

export interface EncodedImage {
  [ENCODED_IMAGE]: Uint8Array
  [IMAGE_DIGEST]: string
}

export const isEncodedImage = (value: unknown): value is EncodedImage =>
  typeof value === 'object' && value !== null && ENCODED_IMAGE in value

const DATA_URL = /^data:([^,]{0,200}),/i

/** The data URL's head (`data:image/png;base64,`), or null when `text` is not a data URL. */
export const dataUrlHead = (text: string): { head: string; base64: boolean } | null => {
  const match = DATA_URL.exec(text)
  return match ? { head: match[0], base64: /;base64$/i.test(match[1]!) } : null
}

/** Text long enough to be worth decoding off the event loop. */
const WORKER_MIN_CHARS = 4096

/** Whether the worker decodes `text`: a long base64 data URL anywhere, or long text in an `images` list (bare base64 is taken there). */
export function isImageText(text: string, inImages: boolean): boolean {
  if (text.length < WORKER_MIN_CHARS) return false
  return inImages || dataUrlHead(text)?.base64 === true
}

/**
 * The bytes that base64 text (or a base64 data URL's data) stands for; null when it is not
 * valid base64. Node's decoder skips what is not base64 (a regular expression over megabytes
 * would take far longer), so text with anything else in it decodes short, and is refused.
 */
export function base64Bytes(text: string): Uint8Array | null {
  const head = dataUrlHead(text)
  const payload = head ? text.slice(head.head.length) : text
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0
  const expected = Math.floor((payload.length * 3) / 4) - padding
  if (payload.length % 4 === 1 || expected <= 0 || payload.length !== padding + Math.ceil((expected * 4) / 3)) return null
  const bytes = Buffer.from(payload, 'base64')
  return bytes.byteLength === expected ? bytes : null
}

/** The decoded size that base64 text says it holds, read from its length alone. */
export function base64Size(payload: string): number {
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0
  return Math.floor((payload.length * 3) / 4) - padding
}
