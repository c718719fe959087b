import { accessProblem, adminActionsFor } from '../lib/access/admin-actions.ts'
import { NewUserBody } from '../lib/access/auth-input.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput } from '../lib/http/validate.ts'

/** POST /v1/admin/users `{name, role?}`: a new user (admins only); 409 when the name is taken. */
export default defineFunction({
  name: 'admin-users-create',
  method: 'POST',
  path: '/v1/admin/users',
  access: 'admin',
  async handle(request, { app, principal }) {
    const body = parseInput(NewUserBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    try {
      return Response.json(await adminActionsFor(app.access.store, principal, request).addUser(body.name, body.role), { status: 201 })
    } catch (error) {
      throw accessProblem(error)
    }
  },
})
