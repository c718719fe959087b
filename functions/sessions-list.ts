import * as v from 'valibot'
import { decodeCursor, encodeCursor, SESSION_CURSOR } from '../lib/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput, queryInteger, queryOf } from '../lib/validate.ts'

const Query = v.object({ limit: queryInteger(1, 200, 50), cursor: v.optional(v.string('must be a single value')) })

/** GET /v1/sessions: newest activity first, a page at a time. */
export default defineFunction({
  name: 'sessions-list',
  method: 'GET',
  path: '/v1/sessions',
  handle(_request, { app, url }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const page = app.store.listSessions(query.limit, decodeCursor(query.cursor, SESSION_CURSOR))
    return Response.json({ sessions: page.items, next_cursor: page.next && encodeCursor(page.next) })
  },
})
