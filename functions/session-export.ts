import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { attachment, conversationExport, conversationMarkdown } from '../lib/conversations/export.ts'
import { parseInput, queryOf, sessionIdFrom } from '../lib/http/validate.ts'
import { noSuchSession } from '../lib/shared/problem.ts'

const Query = v.object({ format: v.optional(v.picklist(['json', 'markdown'], 'must be json or markdown'), 'json') })

/**
 * GET /v1/sessions/{id}/export: the conversation as a download: JSON with every branch (what
 * POST /v1/import reads back), or `?format=markdown`, its active path as Markdown.
 */
export default defineFunction({
  name: 'session-export',
  method: 'GET',
  path: '/v1/sessions/:id/export',
  async handle(_request, { app, params, url, principal }) {
    const id = sessionIdFrom(params)
    const { format } = parseInput(Query, queryOf(url), 'query')
    const session = await app.store.getSession(id, principal.userId)
    if (!session) throw noSuchSession(id)
    if (format === 'markdown') {
      return new Response(await conversationMarkdown(app.store, session), {
        headers: { 'content-type': 'text/markdown; charset=utf-8', 'content-disposition': attachment(session.title, 'md') },
      })
    }
    return Response.json(await conversationExport(app.store, session), { headers: { 'content-disposition': attachment(session.title, 'json') } })
  },
})
