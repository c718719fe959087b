import type { Metrics } from '../observability/metrics.ts'
import type { OllamaPool } from '../ollama/pool.ts'
import type { Config } from '../shared/config.ts'
import { ollamaToolCalls, type ChatMessage } from '../ollama/client.ts'
import type { PromptMessage, StoredImage } from '../store/chat-store.ts'
import type { ChatStore } from '../store/store.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { ImageGate } from './image-gate.ts'
import { base64Bytes, base64Size, dataUrlHead, ENCODED_IMAGE, isEncodedImage } from './image-text.ts'

/**
 * Images sent with a message (docs/images.md): read from a data URL or bare base64, typed by
 * their bytes, checked against IMAGE_MAX_PIXELS from the header before any decoding, then
 * decoded, turned upright, scaled to IMAGE_MAX_SIDE and re-encoded without metadata by sharp
 * (loaded on the first image; it works in libuv's thread pool, off the event loop).
 */

export type ImageMediaType = 'image/png' | 'image/jpeg' | 'image/webp'

/** An image as it is stored and sent to Ollama: re-encoded, upright, without metadata. */
export interface PreparedImage {
  mediaType: ImageMediaType
  width: number
  height: number
  data: Uint8Array
}

export type ImageLimits = Pick<Config, 'maxImageBytes' | 'imageMaxPixels' | 'imageMaxSide'>

/** A stored image as one to store again (it was prepared when it came). */
export const storedAsPrepared = (image: StoredImage): PreparedImage => ({ mediaType: image.media_type as ImageMediaType, width: image.width, height: image.height, data: image.data })

type SniffedType = 'png' | 'jpeg' | 'webp' | 'gif'

/** Base64 text of `bytes` bytes, as a data URL carries it: the size bound of a body with images. */
export const base64Length = (bytes: number) => 4 * Math.ceil(bytes / 3)

/**
 * The largest body of a route that takes images: MAX_BODY_BYTES for the rest of it, plus
 * MAX_IMAGES_PER_MESSAGE images of MAX_IMAGE_BYTES as data URLs.
 */
export const imageBodyBytes = (config: Pick<Config, 'maxBodyBytes' | 'maxImagesPerMessage' | 'maxImageBytes'>) =>
  config.maxBodyBytes + config.maxImagesPerMessage * (base64Length(config.maxImageBytes) + 64)

const invalid = (path: string, detail: string) => new HttpProblem(400, 'validation', `${path} ${detail}`, { errors: [{ path, message: detail }] })

/**
 * The bytes an image carries: a `data:` URL with base64 data, or bare base64 (or those bytes,
 * when a worker decoded the body: lib/images/image-body.ts). A URL of any other scheme is
 * refused: the server never fetches a URL it was given.
 */
export function decodeImageText(text: unknown, path: string, maxBytes: number): Uint8Array {
  const tooLarge = (bytes: number) =>
    new HttpProblem(413, 'payload_too_large', `${path} is ${bytes} bytes; at most ${maxBytes} are taken (MAX_IMAGE_BYTES).`, { errors: [{ path, message: 'is too large' }] })
  if (isEncodedImage(text)) {
    const bytes = text[ENCODED_IMAGE]
    if (bytes.byteLength > maxBytes) throw tooLarge(bytes.byteLength)
    return bytes
  }
  if (typeof text !== 'string') throw invalid(path, 'must be a string: a data URL (data:image/png;base64,…) or base64.')
  const head = dataUrlHead(text)
  if (!head && /^[a-z][a-z0-9+.-]*:/i.test(text)) {
    throw invalid(path, 'is a URL; the server never fetches a URL it is given: send the image itself as a data URL (data:image/png;base64,…) or base64.')
  }
  if (head && !head.base64) throw invalid(path, 'must be a base64 data URL (data:image/png;base64,…).')
  const payload = head ? text.slice(head.head.length) : text
  // Sized from the text before anything is decoded.
  const size = base64Size(payload)
  if (size > maxBytes) throw tooLarge(size)
  const bytes = base64Bytes(payload)
  if (!bytes) throw invalid(path, 'is not valid base64.')
  return bytes
}

/** The image type the bytes begin with (never a label's), or null for anything else. */
export function sniffImageType(bytes: Uint8Array): SniffedType | null {
  const starts = (signature: number[], at = 0) => signature.every((byte, index) => bytes[at + index] === byte)
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png'
  if (starts([0xff, 0xd8, 0xff])) return 'jpeg'
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return 'webp'
  if (starts([0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return 'gif'
  return null
}

/** Lossy photos stay lossy; PNG and a GIF's first frame become PNG (lossless, with alpha). */
const OUTPUT: Record<SniffedType, ImageMediaType> = { png: 'image/png', gif: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' }

type Sharp = typeof import('sharp').default
let sharpModule: Promise<Sharp> | undefined

/** sharp, loaded when the first image arrives (it is external to the bundles: its native part ships beside them). */
function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp').then((module) => module.default).catch((error: unknown) => {
    sharpModule = undefined
    throw new HttpProblem(503, 'internal', 'Images cannot be processed here: the sharp package is not installed beside the server.', { cause: error })
  })
  return sharpModule
}

/**
 * `bytes` as an image to store: one of the accepted types by its bytes, within IMAGE_MAX_PIXELS
 * (read from its header), turned upright, at most IMAGE_MAX_SIDE on its longer side, re-encoded
 * without metadata (EXIF, GPS, XMP, text chunks). 400 naming `path` for anything else.
 */
export async function prepareImage(bytes: Uint8Array, limits: ImageLimits, path: string, metrics?: Pick<Metrics, 'image'>): Promise<PreparedImage> {
  const started = performance.now()
  try {
    const prepared = await reencode(bytes, limits, path)
    metrics?.image('reencoded', (performance.now() - started) / 1000)
    return prepared
  } catch (error) {
    if (error instanceof HttpProblem && error.status < 500) metrics?.image('refused', 0)
    throw error
  }
}

async function reencode(bytes: Uint8Array, limits: ImageLimits, path: string): Promise<PreparedImage> {
  const type = sniffImageType(bytes)
  if (!type) throw invalid(path, 'is not a PNG, JPEG, WebP or GIF image (the type is read from the bytes).')
  const sharp = await loadSharp()
  // failOn 'warning': a truncated or corrupt file is refused rather than stored half grey.
  const input = () => sharp(bytes, { failOn: 'warning', limitInputPixels: limits.imageMaxPixels, pages: 1 })
  let header
  try {
    // The header alone (sharp's own pixel limit would refuse a bomb without saying so).
    header = await sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata()
  } catch {
    throw invalid(path, `is not a readable ${type.toUpperCase()} image.`)
  }
  if (header.format !== type) throw invalid(path, `is not a readable ${type.toUpperCase()} image.`)
  const pixels = (header.width ?? 0) * (header.pageHeight ?? header.height ?? 0)
  if (pixels > limits.imageMaxPixels) {
    throw invalid(path, `is ${header.width}x${header.pageHeight ?? header.height} pixels; at most ${limits.imageMaxPixels} pixels are taken (IMAGE_MAX_PIXELS).`)
  }
  const mediaType = OUTPUT[type]
  const side = limits.imageMaxSide
  let pipeline = input().autoOrient().resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true })
  pipeline = mediaType === 'image/jpeg' ? pipeline.jpeg({ quality: 85, mozjpeg: true }) : mediaType === 'image/webp' ? pipeline.webp({ quality: 85 }) : pipeline.png()
  try {
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true })
    return { mediaType, width: info.width, height: info.height, data }
  } catch {
    throw invalid(path, `is not a readable ${type.toUpperCase()} image (it may be truncated).`)
  }
}

/** An image as a request carries it (a data URL or base64, unchecked), and where: what a refusal names. */
export interface ImageSource {
  text: unknown
  path: string
}

/** The images of one message, and where they are in the request. */
export interface ImageGroup {
  path: string
  sources: ImageSource[]
}

/**
 * The images of each message of a request, prepared, in order: at most MAX_IMAGES_PER_MESSAGE a
 * message, each read (4xx naming the first at fault), for a model that has the `vision`
 * capability (else 400 model_capability, asked of Ollama before any image is decoded), each
 * decoded and checked.
 */
export async function imagesForModel(app: { ollama: OllamaPool; config: ImageLimits & Pick<Config, 'maxImagesPerMessage'>; metrics: Pick<Metrics, 'image'>; imageGate: ImageGate }, model: string, groups: ImageGroup[]): Promise<PreparedImage[][]> {
  const { ollama, config, metrics, imageGate } = app
  if (groups.every((group) => group.sources.length === 0)) return groups.map(() => [])
  for (const { path, sources } of groups) {
    if (sources.length > config.maxImagesPerMessage) {
      throw invalid(path, `has ${sources.length} images; at most ${config.maxImagesPerMessage} are taken (MAX_IMAGES_PER_MESSAGE).`)
    }
  }
  // Every image is read before Ollama is asked or any is decoded: a URL or bad base64 anywhere is refused at no cost.
  const decoded = groups.map((group) => group.sources.map(({ text, path }) => ({ bytes: decodeImageText(text, path, config.maxImageBytes), path })))
  await ollama.requireCapability(model, 'vision', 'see images')
  // At most IMAGE_CONCURRENCY images of the whole instance in sharp at once; the others wait their turn.
  return Promise.all(decoded.map((group) => Promise.all(group.map(({ bytes, path }) => imageGate.run(() => prepareImage(bytes, config, path, metrics))))))
}


/**
 * `messages` as Ollama is sent them, each with its images' bytes: from `inMemory` (a turn's new
 * images), else read from the store, for the messages sent only (a budget's cut ones are never read).
 */
export async function withImageBytes(store: Pick<ChatStore, 'imagesOf'>, messages: PromptMessage[], inMemory: Map<PromptMessage, Uint8Array[]> = new Map()): Promise<ChatMessage[]> {
  const stored = messages.flatMap((message) => (message.imageCount && message.id !== null && !inMemory.has(message) ? [message.id] : []))
  const read = stored.length ? await store.imagesOf(stored, true) : new Map<string, StoredImage[]>()
  return messages.map((message) => {
    const images = inMemory.get(message) ?? (message.id === null ? undefined : read.get(message.id)?.map((image) => image.data))
    return {
      role: message.role,
      content: message.content,
      ...(images?.length ? { images } : {}),
      ...(message.toolCalls ? { tool_calls: ollamaToolCalls(message.toolCalls) } : {}),
      ...(message.toolName ? { tool_name: message.toolName } : {}),
    }
  })
}
