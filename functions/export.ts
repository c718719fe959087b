import { defineFunction } from '../lib/handler.ts'
import { attachment, conversationExport } from '../lib/conversations/export.ts'
import type { SessionCursor } from '../lib/store/chat-store.ts'

const encoder = new TextEncoder()

/**
 * GET /v1/export: every conversation of the caller as JSON Lines (one export object a line, oldest
 * first), streamed: one conversation is read when the client has taken the one before.
 */
export default defineFunction({
  name: 'export',
  method: 'GET',
  path: '/v1/export',
  async handle(request, { app, principal }) {
    let page: string[] = []
    let after: SessionCursor | null = null
    let done = false
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (page.length === 0 && !done) {
          // By creation: a session made or renamed meanwhile does not make the walk skip or repeat one.
          const sessions = await app.store.listSessions(principal.userId, 50, after, 'created')
          page = sessions.items.map((session) => session.id)
          after = sessions.next
          done = after === null
        }
        const id = page.shift()
        if (id === undefined) return controller.close()
        // Deleted since its page was read: skipped.
        const session = await app.store.getSession(id, principal.userId)
        if (session && !request.signal.aborted) controller.enqueue(encoder.encode(`${JSON.stringify(await conversationExport(app.store, session))}\n`))
      },
    }, { highWaterMark: 0 })
    return new Response(body, {
      headers: { 'content-type': 'application/x-ndjson; charset=utf-8', 'content-disposition': attachment('chat-ollama-export', 'jsonl') },
    })
  },
})
