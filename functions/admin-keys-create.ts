import { accessProblem, adminActionsFor } from '../lib/access/admin-actions.ts'
import { NewKeyBody } from '../lib/access/auth-input.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput } from '../lib/http/validate.ts'

/** POST /v1/admin/keys `{user, name?, expires_in?}`: a new key, shown this once in `key` (admins only). */
export default defineFunction({
  name: 'admin-keys-create',
  method: 'POST',
  path: '/v1/admin/keys',
  access: 'admin',
  async handle(request, { app, principal }) {
    const body = parseInput(NewKeyBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    try {
      const { key, info } = await adminActionsFor(app.access.store, principal, request).createKey(body.user, { name: body.name, expiresIn: body.expires_in })
      return Response.json({ ...info, key }, { status: 201, headers: { 'cache-control': 'no-store' } })
    } catch (error) {
      throw accessProblem(error)
    }
  },
})
