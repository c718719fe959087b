import type { ImageInfo, StoredImage } from './chat-store.ts'

/** Images stored with messages and responses (docs/images.md). */
export interface AttachmentStore {
  /** The images of each of `messageIds` (those with none are left out), in order; with their bytes when `withData`. */
  imagesOf(messageIds: string[], withData: true): Promise<Map<string, StoredImage[]>>
  imagesOf(messageIds: string[], withData?: false): Promise<Map<string, ImageInfo[]>>
  /** A stored image of `ownerId`'s (of a message of theirs, or of a response's input); someone else's is as absent as a missing one. */
  getAttachment(id: string, ownerId: string): Promise<StoredImage | undefined>
}
