import { type ImageInfo, type StoredImage, toImage } from '../chat-store.ts'
import type { AttachmentStore } from '../attachment-store.ts'
import { PostgresPart } from './part.ts'

export class PostgresAttachments extends PostgresPart implements AttachmentStore {

  async imagesOf(messageIds: string[], withData: true): Promise<Map<string, StoredImage[]>>
  async imagesOf(messageIds: string[], withData?: false): Promise<Map<string, ImageInfo[]>>
  async imagesOf(messageIds: string[], withData = false): Promise<Map<string, ImageInfo[]>> {
    const images = new Map<string, ImageInfo[]>()
    if (messageIds.length === 0) return images
    const sql = await this.db()
    const rows = await sql`
      SELECT id, message_id, media_type, width, height, size ${withData ? sql`, data` : sql``} FROM attachments
      WHERE message_id = ANY(${messageIds}::text[]) ORDER BY message_id, position`
    for (const row of rows) images.set(row.message_id, [...(images.get(row.message_id) ?? []), toImage(row)])
    return images
  }


  async getAttachment(id: string, ownerId: string): Promise<StoredImage | undefined> {
    const sql = await this.db()
    // Through the message's session, or the response, whichever it belongs to.
    const [row] = await sql`
      SELECT a.id, a.media_type, a.width, a.height, a.size, a.data FROM attachments a
      LEFT JOIN messages m ON m.id = a.message_id LEFT JOIN sessions s ON s.id = m.session_id
      LEFT JOIN responses r ON r.id = a.response_id
      WHERE a.id = ${id} AND (s.owner_id = ${ownerId} OR r.owner_id = ${ownerId})`
    return row && (toImage(row) as StoredImage)
  }
}
