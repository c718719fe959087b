import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { shareLinksOn } from '../lib/http/share-links.ts'
import { parseInput, uuid } from '../lib/http/validate.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** DELETE /v1/shares/{id}: revokes a link at once (204); another user's is 404 like a missing one. */
export default defineFunction({
  name: 'share-delete',
  method: 'DELETE',
  path: '/v1/shares/:id',
  async handle(_request, { app, params, principal }) {
    shareLinksOn(app.config)
    const { id } = parseInput(v.object({ id: v.pipe(uuid(), v.toLowerCase()) }), params, 'share id')
    if (!(await app.database.shares.deleteShare(id, principal.userId))) throw new HttpProblem(404, 'not_found', `No share link has the id ${id}.`)
    return new Response(null, { status: 204 })
  },
})
