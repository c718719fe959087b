import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { shareLinksOn } from '../lib/http/share-links.ts'
import { parseInput, queryOf, uuid } from '../lib/http/validate.ts'

const Query = v.object({ session_id: v.optional(v.pipe(uuid(), v.toLowerCase())) })

/** GET /v1/shares: the caller's share links, newest first (their ids and chats, never their tokens); `session_id` for one chat's. */
export default defineFunction({
  name: 'shares-list',
  method: 'GET',
  path: '/v1/shares',
  async handle(_request, { app, url, principal }) {
    shareLinksOn(app.config)
    const query = parseInput(Query, queryOf(url), 'query')
    return Response.json({ shares: await app.database.shares.listShares(principal.userId, query.session_id) })
  },
})
