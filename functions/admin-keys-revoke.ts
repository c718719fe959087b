import { accessProblem, adminActionsFor } from '../lib/access/admin-actions.ts'
import { defineFunction } from '../lib/handler.ts'

/** DELETE /v1/admin/keys/{id}: revokes a key at once, and the page sign-ins made with it (admins only). */
export default defineFunction({
  name: 'admin-keys-revoke',
  method: 'DELETE',
  path: '/v1/admin/keys/:id',
  access: 'admin',
  async handle(request, { app, params, principal }) {
    try {
      return Response.json(await adminActionsFor(app.access.store, principal, request).revokeKey(params.id!))
    } catch (error) {
      throw accessProblem(error)
    }
  },
})
