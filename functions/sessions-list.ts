import * as v from 'valibot'
import { CREATED_SESSION_CURSOR, decodeCursor, encodeCursor, SESSION_CURSOR } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { folderName } from '../lib/http/session-input.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const trueOrFalse = v.pipe(v.picklist(['true', 'false'], 'must be true or false'), v.transform((text) => text === 'true'))

const Query = v.object({
  limit: queryInteger(1, 200, 50),
  cursor: v.optional(v.string('must be a single value')),
  order: v.optional(v.picklist(['updated', 'created'], 'must be updated or created'), 'updated'),
  // Archived chats are out of the list unless asked for; `all` for a walk that must see every one.
  archived: v.optional(v.picklist(['false', 'true', 'all'], 'must be false, true or all'), 'false'),
  pinned: v.optional(trueOrFalse),
  // Empty: the chats in no folder.
  folder: v.optional(v.union([v.literal(''), folderName], 'must be a folder name (1 to 100 characters), or empty for chats in no folder')),
})

/**
 * GET /v1/sessions: a page at a time, latest activity first (`order=updated`, the default), or
 * oldest created first (`order=created`), the order a sync or export walks without skipping;
 * archived chats only with `archived=true` (or `all`), and only the pinned ones or a folder's when asked.
 */
export default defineFunction({
  name: 'sessions-list',
  method: 'GET',
  path: '/v1/sessions',
  async handle(_request, { app, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const byCreation = query.order === 'created'
    const after = decodeCursor(query.cursor, byCreation ? CREATED_SESSION_CURSOR : SESSION_CURSOR)
    const filter = {
      archived: query.archived === 'all' ? undefined : query.archived === 'true',
      pinned: query.pinned,
      folder: query.folder === undefined ? undefined : query.folder || null,
    }
    const page = await app.store.listSessions(principal.userId, query.limit, after, query.order, filter)
    const next = page.next && encodeCursor(byCreation ? ['created', ...page.next] : page.next)
    return Response.json({ sessions: page.items, next_cursor: next })
  },
})
