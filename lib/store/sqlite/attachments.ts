import type { AttachmentStore } from '../attachment-store.ts'
import { toImage, type ImageInfo, type StoredImage } from '../chat-store.ts'
import { SqliteRole } from './database.ts'

export class SqliteAttachments extends SqliteRole implements AttachmentStore {
  readonly statements = this.prepare({
    imagesOf: `SELECT id, message_id, media_type, width, height, size FROM attachments
       WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, position`,
    imagesWithDataOf: `SELECT id, message_id, media_type, width, height, size, data FROM attachments
       WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, position`,
    // Through the message's session, or the response, whichever it belongs to.
    getAttachment: `SELECT a.id, a.media_type, a.width, a.height, a.size, a.data FROM attachments a
       LEFT JOIN messages m ON m.id = a.message_id LEFT JOIN sessions s ON s.id = m.session_id
       LEFT JOIN responses r ON r.id = a.response_id
       WHERE a.id = ?1 AND (s.owner_id = ?2 OR r.owner_id = ?2)`,
  })

  async imagesOf(messageIds: string[], withData: true): Promise<Map<string, StoredImage[]>>
  async imagesOf(messageIds: string[], withData?: false): Promise<Map<string, ImageInfo[]>>
  async imagesOf(messageIds: string[], withData = false): Promise<Map<string, ImageInfo[]>> {
    const images = new Map<string, ImageInfo[]>()
    if (messageIds.length === 0) return images
    const statement = withData ? this.statements.imagesWithDataOf : this.statements.imagesOf
    for (const row of statement.all(JSON.stringify(messageIds))) {
      const messageId = String(row.message_id)
      images.set(messageId, [...(images.get(messageId) ?? []), toImage(row)])
    }
    return images
  }

  async getAttachment(id: string, ownerId: string): Promise<StoredImage | undefined> {
    const row = this.statements.getAttachment.get(id, ownerId)
    return row && (toImage(row) as StoredImage)
  }
}
