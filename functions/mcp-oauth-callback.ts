import { escapeHtml, plainPage, SHARED_PAGE_HEADERS } from '../lib/conversations/share.ts'
import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** The longest code, state or issuer taken from the query. */
const MAX_PARAM_CHARS = 4096

const answer = (status: number, title: string, text: string) =>
  new Response(plainPage(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>`), { status, headers: SHARED_PAGE_HEADERS })

/**
 * GET /v1/mcp/oauth/callback?code=…&state=…: where an MCP server's authorization server sends the
 * admin's browser back (docs/tools.md "Servers that sign in with OAuth"). The state, good once and
 * for 10 minutes, is what authenticates it: the code is exchanged for tokens, stored sealed. A page
 * with no script says how it went; nothing in it comes from the query but a refusal's error code.
 */
export default defineFunction({
  name: 'mcp-oauth-callback',
  method: 'GET',
  path: '/v1/mcp/oauth/callback',
  access: 'public',
  async handle(request, { app }) {
    const query = new URL(request.url).searchParams
    const [code, state, iss, error] = ['code', 'state', 'iss', 'error'].map((name) => query.get(name) ?? undefined)
    if (!state || [code, state, iss, error].some((value) => value !== undefined && value.length > MAX_PARAM_CHARS)) {
      return answer(400, 'Sign-in not finished', 'This address is missing its state or has values too long: start the sign-in again.')
    }
    if (error !== undefined || !code) {
      // The state is used up either way: a refused sign-in is started again.
      await app.tools.abandonSignIn(state)
      const reason = error && /^[a-z_]{1,64}$/.test(error) ? ` (${error})` : ''
      return answer(400, 'Sign-in refused', `The authorization server did not give access${reason}: start the sign-in again.`)
    }
    try {
      const server = await app.tools.finishSignIn(state, code, iss)
      return answer(200, 'Signed in', `${server} is signed in: its tools can be used now. You can close this tab.`)
    } catch (failure) {
      if (failure instanceof HttpProblem && failure.status === 400) return answer(400, 'Sign-in not finished', failure.detail)
      return answer(502, 'Sign-in not finished', 'The authorization server did not give tokens for this sign-in (the log says more): start it again.')
    }
  },
})
