import type { ImageInfo } from '../store/chat-store.ts'

/** Where an image is served (functions/attachment-get.ts), to its owner only. */
export const attachmentUrl = (id: string) => `/v1/attachments/${id}`

/** A message's images as the API lists them: each with the URL of its bytes. */
export const listedImages = (images: readonly ImageInfo[] | undefined) => (images ?? []).map((image) => ({ ...image, url: attachmentUrl(image.id) }))

/**
 * The headers of an image's bytes: its exact type, never sniffed as anything else; private to
 * the browser that asked; and, opened on its own, a document that runs nothing.
 */
export function attachmentHeaders(mediaType: string, bytes: number): Record<string, string> {
  return {
    'content-type': mediaType,
    'content-length': String(bytes),
    'x-content-type-options': 'nosniff',
    'cache-control': 'private, max-age=3600',
    'content-security-policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    'cross-origin-resource-policy': 'same-origin',
  }
}
