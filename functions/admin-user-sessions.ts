import * as v from 'valibot'
import { accessProblem } from '../lib/access/admin-actions.ts'
import { clientAddress } from '../lib/http/client-address.ts'
import { decodeCursor, encodeCursor, SESSION_CURSOR } from '../lib/http/cursor.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.object({ limit: queryInteger(1, 200, 50), cursor: v.optional(v.string('must be a single value')) })

/**
 * GET /v1/admin/users/{name}/sessions: another user's conversations, for an admin. The one way an
 * admin sees others' data, and each read is in the audit log.
 */
export default defineFunction({
  name: 'admin-user-sessions',
  method: 'GET',
  path: '/v1/admin/users/:name/sessions',
  access: 'admin',
  async handle(request, { app, params, url, principal }) {
    const query = parseInput(Query, queryOf(url), 'query')
    let ownerId: string
    try {
      ownerId = (await app.access.store.user(params.name!)).id
    } catch (error) {
      throw accessProblem(error)
    }
    const page = await app.store.listSessions(ownerId, query.limit, decodeCursor(query.cursor, SESSION_CURSOR))
    await app.access.store.audit({ userId: principal.userId, keyId: principal.keyId, address: clientAddress(request), action: 'admin_read', target: `sessions_of:${params.name}`, outcome: 'ok' })
    return Response.json({ user: params.name, sessions: page.items, next_cursor: page.next && encodeCursor(page.next) })
  },
})
