import { defineFunction } from '../lib/handler.ts'
import { readJsonBytes } from '../lib/http/body.ts'
import { isKnownFormat, readConversation, Unreadable } from '../lib/http/conversation-import.ts'
import { answerOnce } from '../lib/http/idempotency.ts'
import { openImportFile } from '../lib/http/import-file.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

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
    const bytes = await readJsonBytes(request, app.config.importMaxBytes)
    if (bytes === undefined) throw new HttpProblem(400, 'validation', 'The body must be an export file: a JSON object or array.')
    // Hashed off the event loop (WebCrypto): the body may be tens of megabytes.
    const fingerprint = Buffer.from(await crypto.subtle.digest('SHA-256', bytes)).toString('base64url')
    return answerOnce(app, request, principal.userId, `POST /v1/import\n${fingerprint}`, async () => {
      const file = await openImportFile(bytes)
      try {
        if (file.shape === 'other') throw new HttpProblem(400, 'validation', 'The body must be an export file: a JSON object or array.')
        const imported: Array<{ session_id: string; title: string; messages: number }> = []
        const skipped: Array<{ index: number; reason: string }> = []
        let known = 0
        for (let index = 0; index < file.count; index++) {
          const read = await file.item(index)
          if ('unfit' in read) {
            skipped.push({ index, reason: read.unfit })
            continue
          }
          if (isKnownFormat(read.item)) known++
          try {
            const conversation = readConversation(read.item)
            const stored = await app.store.importConversation(principal.userId, conversation)
            if (stored === 'duplicate') skipped.push({ index, reason: 'duplicate' })
            else imported.push({ session_id: stored.sessionId, title: conversation.title, messages: conversation.messages.length })
          } catch (error) {
            if (!(error instanceof Unreadable)) throw error
            skipped.push({ index, reason: error.message })
          }
        }
        if (file.count > 0 && known === 0) {
          throw new HttpProblem(400, 'validation', 'The body is not an export this server can read: a chat-ollama export, ChatGPT\'s conversations.json or Open WebUI\'s export.')
        }
        return { status: 200, body: { imported, skipped } }
      } finally {
        await file.close()
      }
    })
  },
})
