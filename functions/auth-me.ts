import { defineFunction } from '../lib/handler.ts'

/** GET /v1/auth/me: who the request acts for, and whether this server asks for credentials (401 when it does and none came). */
export default defineFunction({
  name: 'auth-me',
  method: 'GET',
  path: '/v1/auth/me',
  async handle(_request, { app, principal }) {
    const { userId: id, name, role, via } = principal
    return Response.json({ user: { id, name, role }, auth: app.config.auth, via }, { headers: { 'cache-control': 'no-store' } })
  },
})
