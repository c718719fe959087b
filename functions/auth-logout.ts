import { SESSION_COOKIE } from '../lib/access/control.ts'
import { clientAddress } from '../lib/http/client-address.ts'
import { defineFunction } from '../lib/handler.ts'

/** POST /v1/auth/logout: ends the page's sign-in (the cookie stops working at once, whatever else the request carries) and clears the cookie. */
export default defineFunction({
  name: 'auth-logout',
  method: 'POST',
  path: '/v1/auth/logout',
  async handle(request, { app, principal }) {
    // A cookie sent along with a key is ended too: signing out must not leave a sign-in alive.
    const token = app.access.cookieToken(request)
    if (token !== undefined) {
      await app.access.store.closeWebSession(token)
      await app.access.store.audit({ userId: principal.userId, keyId: principal.keyId, address: clientAddress(request), action: 'logout', outcome: 'ok' })
    }
    return new Response(null, { status: 204, headers: { 'set-cookie': `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0` } })
  },
})
