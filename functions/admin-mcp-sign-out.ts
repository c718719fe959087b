import { adminActionsFor } from '../lib/access/admin-actions.ts'
import { defineFunction } from '../lib/handler.ts'

/**
 * DELETE /v1/admin/mcp/{server}/sign-in: forgets the tokens of an MCP server's OAuth sign-in (on
 * every instance); the server needs a new sign-in. Admins only.
 */
export default defineFunction({
  name: 'admin-mcp-sign-out',
  method: 'DELETE',
  path: '/v1/admin/mcp/:server/sign-in',
  access: 'admin',
  async handle(request, { app, principal, params }) {
    const oauth = app.tools.oauthOf(params.server ?? '')
    await oauth.signOut()
    await adminActionsFor(app.database.access, principal, request).record('mcp_sign_out', `mcp:${params.server}`)
    return new Response(null, { status: 204 })
  },
})
