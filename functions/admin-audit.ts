import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { parseInput, queryInteger, queryOf } from '../lib/http/validate.ts'

const Query = v.object({
  limit: queryInteger(1, 500, 100),
  before: v.optional(v.pipe(v.string('must be a single value'), v.regex(/^\d{1,15}$/, 'must be an entry id'), v.transform(Number))),
})

/** GET /v1/admin/audit?limit=&before=: the audit log, newest first (admins only). */
export default defineFunction({
  name: 'admin-audit',
  method: 'GET',
  path: '/v1/admin/audit',
  access: 'admin',
  async handle(_request, { app, url }) {
    const query = parseInput(Query, queryOf(url), 'query')
    const entries = await app.access.store.listAudit(query.limit, query.before ?? null)
    const last = entries.at(-1)
    return Response.json({ entries, next_before: entries.length === query.limit && last ? Number(last.id) : null })
  },
})
