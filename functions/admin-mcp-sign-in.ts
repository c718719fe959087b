import { adminActionsFor } from '../lib/access/admin-actions.ts'
import { defineFunction } from '../lib/handler.ts'
import { CALLBACK_PATH } from '../lib/tools/mcp-oauth.ts'

/**
 * POST /v1/admin/mcp/{server}/sign-in: starts an admin's OAuth sign-in to an MCP server
 * (docs/tools.md "Servers that sign in with OAuth"): `authorization_url` is where the admin's
 * browser goes; the authorization server sends it back to GET /v1/mcp/oauth/callback within
 * `expires_at`. Admins only.
 */
export default defineFunction({
  name: 'admin-mcp-sign-in',
  method: 'POST',
  path: '/v1/admin/mcp/:server/sign-in',
  access: 'admin',
  async handle(request, { app, principal, params }) {
    const oauth = app.tools.oauthOf(params.server ?? '')
    const redirectUrl = `${app.config.publicUrl || new URL(request.url).origin}${CALLBACK_PATH}`
    const { authorizationUrl, expiresAt } = await oauth.startSignIn(redirectUrl, principal.userId)
    await adminActionsFor(app.database.access, principal, request).record('mcp_sign_in_start', `mcp:${params.server}`)
    return Response.json({ server: params.server, authorization_url: authorizationUrl, redirect_uri: redirectUrl, expires_at: expiresAt }, { status: 201, headers: { 'cache-control': 'no-store' } })
  },
})
