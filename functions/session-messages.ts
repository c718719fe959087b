import * as v from 'valibot'
import { decodeCursor, encodeCursor, MESSAGE_CURSOR } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { parseInput, queryInteger, queryOf, sessionIdFrom } from '../lib/http/validate.ts'

const Query = v.object({ limit: queryInteger(1, 500, 100), cursor: v.optional(v.string('must be a single value')) })

/** GET /v1/sessions/{id}/messages: the conversation, oldest first, a page at a time. */
export default defineFunction({
  name: 'session-messages',
  method: 'GET',
  path: '/v1/sessions/:id/messages',
  async handle(_request, { app, params, url, principal }) {
    const id = sessionIdFrom(params)
    const query = parseInput(Query, queryOf(url), 'query')
    const after = decodeCursor(query.cursor, MESSAGE_CURSOR)
    if (!await app.store.getSession(id, principal.userId)) throw noSuchSession(id)
    const page = await app.store.listMessages(id, query.limit, after)
    return Response.json({ session_id: id, messages: page.items, next_cursor: page.next && encodeCursor(page.next) })
  },
})
