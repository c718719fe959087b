// Signing in: when the server asks for credentials, the page trades an API key for an HttpOnly
// cookie (the key is not kept), shows who is signed in, and signs out. On loopback with AUTH off
// there is nothing to sign in to and none of this shows.
import { problemOf } from './api.ts'
import { state, ui } from './dom.ts'

interface Me { user: { name: string; role: 'admin' | 'user' }; auth: 'off' | 'required' }

/** Resolves true when the page may start (signed in, or no sign-in needed); false while it shows the sign-in form. */
export async function ensureSignedIn(): Promise<boolean> {
  const response = await fetch('/v1/auth/me', { cache: 'no-store' })
  if (response.status === 401) {
    showSignIn()
    return false
  }
  if (!response.ok) throw await problemOf(response)
  const me: Me = await response.json()
  ui.account.hidden = me.auth !== 'required'
  ui.signedInAs.textContent = me.user.name
  state.isAdmin = me.user.role === 'admin'
  return true
}

function showSignIn(): void {
  ui.layout.hidden = true
  ui.signIn.hidden = false
  ui.apiKey.focus()
  ui.signInForm.addEventListener('submit', (event) => {
    event.preventDefault()
    ui.signInError.hidden = true
    void fetch('/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: ui.apiKey.value }) })
      .then(async (response) => {
        ui.apiKey.value = ''
        if (response.ok) return location.reload()
        const problem = await problemOf(response)
        ui.signInError.textContent = problem.message
        ui.signInError.hidden = false
      })
  })
}

export function wireSignOut(): void {
  ui.signOut.addEventListener('click', () => {
    void fetch('/v1/auth/logout', { method: 'POST' }).then(() => location.reload())
  })
}
