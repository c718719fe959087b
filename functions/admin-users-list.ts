import { defineFunction } from '../lib/handler.ts'

/** GET /v1/admin/users: every user (admins only). */
export default defineFunction({
  name: 'admin-users-list',
  method: 'GET',
  path: '/v1/admin/users',
  access: 'admin',
  async handle(_request, { app }) {
    return Response.json({ users: await app.access.store.listUsers() })
  },
})
