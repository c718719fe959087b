import * as v from 'valibot'
import { CREATED_SESSION_CURSOR, decodeCursor, encodeCursor, SESSION_CURSOR } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.object({
  limit: queryInteger(1, 200, 50),
  cursor: v.optional(v.string('must be a single value')),
  order: v.optional(v.picklist(['updated', 'created'], 'must be updated or created'), 'updated'),
})

/**
 * GET /v1/sessions: a page at a time, latest activity first (`order=updated`, the default), or
 * oldest created first (`order=created`), the order a sync or export walks without skipping.
 */
export default defineFunction({
  name: 'sessions-list',
  method: 'GET',
  path: '/v1/sessions',
  async handle(_request, { app, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const byCreation = query.order === 'created'
    const after = decodeCursor(query.cursor, byCreation ? CREATED_SESSION_CURSOR : SESSION_CURSOR)
    const page = await app.store.listSessions(principal.userId, query.limit, after, query.order)
    const next = page.next && encodeCursor(byCreation ? ['created', ...page.next] : page.next)
    return Response.json({ sessions: page.items, next_cursor: next })
  },
})
