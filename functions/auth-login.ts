import { WEB_SESSION_MS } from '../lib/store/access-store.ts'
import { SESSION_COOKIE } from '../lib/access/control.ts'
import { SignInBody } from '../lib/access/auth-input.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { parseInput } from '../lib/http/validate.ts'

/**
 * POST /v1/auth/login: the page trades an API key for a sign-in cookie (HttpOnly, SameSite=Strict),
 * so the key is not kept in the browser. Failed attempts are limited per address and audited.
 */
export default defineFunction({
  name: 'auth-login',
  method: 'POST',
  path: '/v1/auth/login',
  access: 'public',
  async handle(request, { app }) {
    const body = parseInput(SignInBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const signedIn = await app.access.signIn(request, body.api_key)
    const { token } = await app.access.store.openWebSession(signedIn)
    const secure = request.headers.get('x-forwarded-proto') === 'https' || request.url.startsWith('https:') ? '; Secure' : ''
    const cookie = `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${WEB_SESSION_MS / 1000}${secure}`
    const { id, name, role } = signedIn.user
    return Response.json({ user: { id, name, role } }, { headers: { 'set-cookie': cookie, 'cache-control': 'no-store' } })
  },
})
