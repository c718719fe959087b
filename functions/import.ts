import { randomUUID } from 'node:crypto'
import type { AppContext } from '../lib/context.ts'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBytes } from '../lib/http/body.ts'
import { answerOnce } from '../lib/retries/idempotency.ts'
import { openImportFile, takeImportSlot, type ImportFile } from '../lib/conversations/import-file.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { decodeImageText, prepareImage } from '../lib/images/image-input.ts'
import type { ImportedConversation, ImportedMessage, NewImage } from '../lib/store/chat-store.ts'
import type { ImportedTree } from '../lib/store/transfer-store.ts'

/**
 * POST /v1/import: conversations from a file (this server's export, one or a list; ChatGPT's
 * `conversations.json`; Open WebUI's export), each stored as a new session with its branches.
 * One already here (imported before, or the very session it was exported from) is brought up to
 * date: the messages it lacks are added in their place (`updated`), or, with none, it is skipped
 * as a `duplicate`; one that cannot be read is skipped saying why. Once per Idempotency-Key.
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
      const updated: Array<{ session_id: string; title: string; messages_added: number }> = []
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
        else if ('added' in stored) updated.push({ session_id: stored.sessionId, title: read.conversation.title, messages_added: stored.added })
        else imported.push({ session_id: stored.sessionId, title: read.conversation.title, messages: read.messageCount })
      }
      if (file.count > 0 && known === 0) {
        throw new HttpProblem(400, 'validation', 'The body is not an export this server can read: a chat-ollama export, ChatGPT\'s conversations.json or Open WebUI\'s export.')
      }
      return { status: 200, body: { imported, updated, skipped } }
    } finally {
      await file.close()
    }
  })
}

type Stored = { sessionId: string } | { sessionId: string; added: number } | 'duplicate' | HttpProblem

/**
 * Stores one conversation of the file with new ids, a chunk of messages at a time; it becomes the
 * user's only once all of it is written. Its new session id, `duplicate`, or the problem with one
 * of its images (then nothing of it is kept). One imported before is brought up to date instead.
 */
async function importConversation(app: AppContext, ownerId: string, file: ImportFile, conversation: ImportedConversation, messageCount: number): Promise<Stored> {
  const start = await app.store.beginImport(ownerId, conversation)
  if ('existingId' in start) return updateConversation(app, start.existingId, file, conversation, messageCount)
  const { sessionId } = start
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
        return { ...message, id, sourceId: message.id, parentId: message.parentId === null ? null : ids.get(message.parentId)!, images: images[index] }
      }))
    }
    const currentId = conversation.currentId === null ? null : (ids.get(conversation.currentId) ?? null)
    return (await app.store.finishImport(ownerId, sessionId, conversation, currentId)) === 'imported' ? { sessionId } : 'duplicate'
  } catch (error) {
    await app.store.discardImport(sessionId)
    if (error instanceof HttpProblem && error.status < 500) return error
    throw error
  }
}

/**
 * Brings a session imported before up to date with a later export of its conversation (ChatGPT's
 * exports hold every conversation, grown): each message of the file is matched to the one an
 * earlier import stored from it (for an export of the session itself, its own id; for a session
 * imported before these were recorded, a message under the same parent with the same role and
 * text), and those it lacks are added in their place, branches too. The active path moves to the
 * file's only if it went on from where the session's was (a chat continued here keeps its own).
 * How many messages were added, `duplicate` when none, or the problem with an image (the
 * messages of earlier chunks stay: a later import adds the rest).
 */
async function updateConversation(app: AppContext, sessionId: string, file: ImportFile, conversation: ImportedConversation, messageCount: number): Promise<Stored> {
  const tree = await app.store.importedTree(sessionId)
  const parents = new Map(tree.messages.map((message) => [message.id, message.parentId]))
  const children = new Map<string | null, ImportedTree['messages']>()
  for (const message of tree.messages) children.set(message.parentId, [...(children.get(message.parentId) ?? []), message])
  const recorded = new Set(tree.sources.values())
  const byText = tree.sources.size === 0
  const sameSession = conversation.sameAsSession === sessionId
  const ids = new Map<string, string>()
  /** The message here that `message` of the file is, if any. */
  const match = (message: ImportedMessage, parentId: string | null): string | undefined => {
    const known = tree.sources.get(message.id)
    if (known) return known
    if (sameSession && parents.has(message.id)) return message.id
    if (!byText) return undefined
    const same = children.get(parentId)?.find((child) => !recorded.has(child.id) && child.role === message.role && child.content === message.content)
    if (same) recorded.add(same.id)
    return same?.id
  }
  let added = 0
  try {
    for (let from = 0; from < messageCount;) {
      const chunk = await file.messages(from)
      from += chunk.length
      const fresh: ImportedMessage[] = []
      const matched: Array<{ sourceId: string; messageId: string }> = []
      for (const message of chunk) {
        const parentId = message.parentId === null ? null : ids.get(message.parentId)!
        const here = match(message, parentId)
        if (here !== undefined) {
          ids.set(message.id, here)
          if (!tree.sources.has(message.id) && !sameSession) matched.push({ sourceId: message.id, messageId: here })
          continue
        }
        const id = randomUUID()
        ids.set(message.id, id)
        parents.set(id, parentId)
        fresh.push({ ...message, id, sourceId: message.id, parentId })
      }
      const images = await Promise.all(fresh.map((message) => importedImages(app, message.imageTexts ?? [], `message ${message.sourceId}`)))
      if (fresh.length || matched.length) await app.store.addImportedMessages(sessionId, fresh.map(({ imageTexts: _, ...message }, index) => ({ ...message, images: images[index] })), matched)
      added += fresh.length
    }
  } catch (error) {
    if (error instanceof HttpProblem && error.status < 500) return error
    throw error
  } finally {
    // The inserts moved the active path to the last message added: put where it should be.
    if (added > 0) {
      const fileEnd = conversation.currentId === null ? undefined : ids.get(conversation.currentId)
      const goesOn = fileEnd !== undefined && (tree.currentId === null || onPathTo(parents, fileEnd, tree.currentId))
      await app.store.finishImportUpdate(sessionId, goesOn ? fileEnd : tree.currentId, conversation.updatedAt > tree.updatedAt ? conversation.updatedAt : tree.updatedAt)
    }
  }
  return added > 0 ? { sessionId, added } : 'duplicate'
}

/** Whether `ancestor` is on the path from the first message to `leaf` (`leaf` itself included). */
function onPathTo(parents: Map<string, string | null>, leaf: string, ancestor: string): boolean {
  const seen = new Set<string>()
  for (let at: string | null | undefined = leaf; at != null && !seen.has(at); at = parents.get(at)) {
    if (at === ancestor) return true
    seen.add(at)
  }
  return false
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
