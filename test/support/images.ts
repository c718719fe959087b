/**
 * Made-up images for the tests: PNGs written byte by byte (with zlib), and JPEG, WebP and GIF
 * files made by sharp, the library the server uses, so every file is a real one of its type.
 */
import { crc32, deflateSync } from 'node:zlib'
import sharp from 'sharp'

function chunk(type: string, data: Uint8Array): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.byteLength)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function ihdr(width: number, height: number): Buffer {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bits per sample
  header[9] = 2 // truecolour RGB
  return header
}

/** An RGB PNG of `width` x `height` in a diagonal gradient, with `text` as tEXt chunks (keyword → value). */
export function pngFile(width: number, height: number, text: Record<string, string> = {}): Buffer {
  const rows: Buffer[] = []
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3)
    for (let x = 0; x < width; x++) row.set([(x * 255) / width, (y * 255) / height, 128], 1 + x * 3)
    rows.push(row)
  }
  const texts = Object.entries(text).map(([keyword, value]) => chunk('tEXt', Buffer.from(`${keyword}\0${value}`, 'latin1')))
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr(width, height)), ...texts, chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))])
}

/** A PNG whose header declares `width` x `height` (a decompression bomb's claim) over a few bytes of data. */
export function pngHeaderOnly(width: number, height: number): Buffer {
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr(width, height)), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))])
}

/** A JPEG of `width` x `height` with EXIF (an Artist, GPS coordinates) and the given EXIF orientation. */
export async function jpegWithExif(width: number, height: number, orientation = 1): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .withExif({ IFD0: { Artist: 'exif-artist-secret' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' } })
    .withMetadata({ orientation })
    .jpeg()
    .toBuffer()
}

/** A noisy JPEG photo of at least `minBytes` bytes (noise does not compress). */
export async function largeJpeg(minBytes: number): Promise<Buffer> {
  for (let side = 1200; ; side += 400) {
    const photo = await sharp({ create: { width: side, height: side, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).jpeg({ quality: 95 }).toBuffer()
    if (photo.byteLength >= minBytes) return photo
  }
}

export const webpFile = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#3060c0' } }).webp().toBuffer()
export const gifFile = (width: number, height: number) => sharp({ create: { width, height, channels: 3, background: '#30c060' } }).gif().toBuffer()

/** `bytes` as a data URL labelled `mediaType` (a label the server never trusts). */
export const dataUrl = (bytes: Uint8Array, mediaType = 'image/png') => `data:${mediaType};base64,${Buffer.from(bytes).toString('base64')}`

/** What sharp reads of an image: its format, size, and whether it carries EXIF, XMP or text. */
export async function imageFacts(bytes: Uint8Array) {
  const meta = await sharp(bytes).metadata()
  return { format: meta.format, width: meta.width, height: meta.height, exif: meta.exif !== undefined, xmp: meta.xmp !== undefined, comments: meta.comments ?? [] }
}
