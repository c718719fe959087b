import * as v from 'valibot'
import { decodeCursor, encodeCursor, MESSAGE_CURSOR } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { noSuchSession } from '../lib/shared/problem.ts'
import { parseInput, queryInteger, queryOf, sessionIdFrom } from '../lib/http/validate.ts'
import { listedImages } from '../lib/images/attachments.ts'

const Query = v.object({
  limit: queryInteger(1, 500, 100),
  cursor: v.optional(v.string('must be a single value')),
  branch: v.optional(v.picklist(['active', 'all'], 'must be active or all'), 'active'),
})

/**
 * GET /v1/sessions/{id}/messages: the conversation's active path (`?branch=all`: every branch's
 * messages), oldest first, a page at a time; each message with its parent, its siblings and the
 * images it shows, and a reply paused for approvals with the calls it waits on.
 */
export default defineFunction({
  name: 'session-messages',
  method: 'GET',
  path: '/v1/sessions/:id/messages',
  async handle(_request, { app, params, url, principal }) {
    const id = sessionIdFrom(params)
    const query = parseInput(Query, queryOf(url), 'query')
    const after = decodeCursor(query.cursor, MESSAGE_CURSOR)
    const session = await app.store.getSession(id, principal.userId)
    if (!session) throw noSuchSession(id)
    const page = await app.store.listMessages(id, query.limit, after, 'asc', query.branch)
    const children = await app.store.childrenOf(id, [...new Set(page.items.map((message) => message.parent_id))])
    // A reply paused for approvals lists the calls it waits on (docs/tools.md).
    const waiting = page.items.some((message) => message.status === 'awaiting_approval') ? await app.store.pendingApprovals(id) : []
    const messages = page.items.map((message) => ({
      ...message,
      images: listedImages(message.images),
      sibling_ids: children.get(message.parent_id) ?? [message.id],
      ...(message.status === 'awaiting_approval'
        ? { approval_required: waiting.filter((call) => call.reply_id === message.id).map(({ call_id, name, arguments: args, expires_at }) => ({ call_id, name, arguments: args, expires_at })) }
        : {}),
    }))
    return Response.json({ session_id: id, current_message_id: session.current_message_id, messages, next_cursor: page.next && encodeCursor(page.next) })
  },
})
