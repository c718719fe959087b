import * as v from 'valibot'
import { accessProblem } from '../lib/access/admin-actions.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput, queryOf } from '../lib/http/validate.ts'

const Query = v.object({ user: v.optional(v.string('must be a single value')) })

/** GET /v1/admin/keys?user=NAME: keys with their ids, names and times, never the secrets (admins only). */
export default defineFunction({
  name: 'admin-keys-list',
  method: 'GET',
  path: '/v1/admin/keys',
  access: 'admin',
  async handle(_request, { app, url }) {
    const query = parseInput(Query, queryOf(url), 'query')
    try {
      return Response.json({ keys: await app.access.store.listKeys(query.user) })
    } catch (error) {
      throw accessProblem(error)
    }
  },
})
