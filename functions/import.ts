import { randomUUID } from 'node:crypto'
import type { AppContext } from '../lib/context.ts'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBytes } from '../lib/http/body.ts'
import { answerOnce } from '../lib/retries/idempotency.ts'
import { openImportFile, takeImportSlot, type ImportFile } from '../lib/conversations/import-file.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { decodeImageText, prepareImage } from '../lib/images/image-input.ts'
import type { ImportedConversation, NewImage } from '../lib/store/chat-store.ts'

/**
 * POST /v1/import: conversations from a file (this server's export, one or a list; ChatGPT's
 * `conversations.json`; Open WebUI's export), each stored as a new session with its branches.
 * One already here (imported before, or the very session it was exported from) is skipped as a
 * `duplicate`; one that cannot be read is skipped saying why. Once per Idempotency-Key.
 */
export default defineFunction({
  name: 'import',
  method: 'POST',
  path: '/v1/import',
  maxBodyBytes: (config) => config.importMaxBytes,
  async handle(request, { app, principal }) {
    // Taken before the body is read: a file and its worker are what a slot bounds.
    const giveBack = takeImportSlot(app, principal.userId)
    try {
      return await importFrom(app, request, principal.userId)
    } finally {
      giveBack()
    }
  },
})

/** Reads the file and imports what it holds, once per Idempotency-Key. */
async function importFrom(app: AppContext, request: Request, ownerId: string): Promise<Response> {
  const bytes = await readJsonBytes(request, app.config.importMaxBytes)
  if (bytes === undefined) throw new HttpProblem(400, 'validation', 'The body must be an export file: a JSON object or array.')
  // Hashed off the event loop (WebCrypto): the body may be tens of megabytes.
  const fingerprint = Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('base64url')
  return answerOnce(app, request, ownerId, `POST /v1/import\n${fingerprint}`, async () => {
    const file = await openImportFile(bytes, { maxMessageChars: app.config.maxMessageChars })
    try {
      if (file.shape === 'other') throw new HttpProblem(400, 'validation', 'The body must be an export file: a JSON object or array.')
      const imported: Array<{ session_id: string; title: string; messages: number }> = []
      const skipped: Array<{ index: number; reason: string }> = []
      let known = 0
      for (let index = 0; index < file.count; index++) {
        const read = await file.item(index)
        if (read.known) known++
        if ('unfit' in read) {
          skipped.push({ index, reason: read.unfit })
          continue
        }
        const stored = await importConversation(app, ownerId, file, read.conversation, read.messageCount)
        if (stored instanceof HttpProblem) skipped.push({ index, reason: stored.detail })
        else if (stored === 'duplicate') skipped.push({ index, reason: 'duplicate' })
        else imported.push({ session_id: stored, title: read.conversation.title, messages: read.messageCount })
      }
      if (file.count > 0 && known === 0) {
        throw new HttpProblem(400, 'validation', 'The body is not an export this server can read: a chat-ollama export, ChatGPT\'s conversations.json or Open WebUI\'s export.')
      }
      return { status: 200, body: { imported, skipped } }
    } finally {
      await file.close()
    }
  })
}

/**
 * Stores one conversation of the file with new ids, a chunk of messages at a time; it becomes the
 * user's only once all of it is written. Its new session id, `duplicate`, or the problem with one
 * of its images (then nothing of it is kept).
 */
async function importConversation(app: AppContext, ownerId: string, file: ImportFile, conversation: ImportedConversation, messageCount: number): Promise<string | 'duplicate' | HttpProblem> {
  const sessionId = await app.store.beginImport(ownerId, conversation)
  if (sessionId === 'duplicate') return sessionId
  try {
    const ids = new Map<string, string>()
    for (let from = 0; from < messageCount;) {
      // Each chunk is one short transaction: the event loop is held a few milliseconds at a time.
      const chunk = await file.messages(from)
      const images = await Promise.all(chunk.map((message, index) => importedImages(app, message.imageTexts ?? [], `message ${from + index + 1}`)))
      from += chunk.length
      await app.store.addImportedMessages(sessionId, chunk.map(({ imageTexts: _, ...message }, index) => {
        const id = randomUUID()
        ids.set(message.id, id)
        // Parents come first, so a parent's new id is known.
        return { ...message, id, parentId: message.parentId === null ? null : ids.get(message.parentId)!, images: images[index] }
      }))
    }
    const currentId = conversation.currentId === null ? null : (ids.get(conversation.currentId) ?? null)
    return (await app.store.finishImport(ownerId, sessionId, conversation, currentId)) === 'imported' ? sessionId : 'duplicate'
  } catch (error) {
    await app.store.discardImport(sessionId)
    if (error instanceof HttpProblem && error.status < 500) return error
    throw error
  }
}

/** A message's images from a file, through the same checks as a chat's (docs/images.md). */
async function importedImages(app: AppContext, texts: string[], path: string): Promise<NewImage[]> {
  if (texts.length > app.config.maxImagesPerMessage) {
    throw new HttpProblem(400, 'validation', `${path} has ${texts.length} images; at most ${app.config.maxImagesPerMessage} are taken (MAX_IMAGES_PER_MESSAGE).`)
  }
  return Promise.all(texts.map(async (text, index) => {
    const where = `${path}, image ${index + 1},`
    return prepareImage(decodeImageText(text, where, app.config.maxImageBytes), app.config, where, app.metrics)
  }))
}
