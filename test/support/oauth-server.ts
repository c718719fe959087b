/**
 * A small OAuth 2.1 authorization server on loopback for the tests, as MCP servers use them:
 * metadata (RFC 8414), dynamic client registration (RFC 7591), the authorization-code grant with
 * PKCE S256 that approves at once (the browser is sent straight back with a code), refresh tokens
 * that rotate, and client credentials with client_secret_basic. It checks what a real one checks
 * (the client, the redirect address, the verifier, a code or refresh token used once) and records
 * every grant asked for.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'

export interface OAuthTestServer {
  issuer: string
  /** The grant types asked of the token endpoint, in order (refused ones too). */
  grants: string[]
  /** Authorization requests, with what they asked for. */
  authorizations: Array<{ clientId: string; scope: string | undefined; redirectUri: string; resource: string | undefined }>
  /** Clients registered dynamically. */
  registered: number
  /** Whether `token` is an access token it issued, not expired, with every one of `scopes`. */
  accepts(token: string | undefined, scopes?: string[]): boolean
  /** Every access and refresh token it issued. */
  issued: string[]
  /** Refuses every token issued so far, access and refresh (as a revoked sign-in). */
  revoke(): void
  /** Seconds the next access tokens last. */
  lifetimeSeconds: number
  /** A pre-registered client for client credentials. */
  machineClient: { id: string; secret: string }
  /** While set, every connection is dropped at once (an authorization server that is down). */
  unreachable: boolean
}

const s256 = (verifier: string) => createHash('sha256').update(verifier).digest('base64url')
const token = (kind: string) => `${kind}-${randomBytes(24).toString('base64url')}`

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = ''
  for await (const chunk of req) body += chunk
  return new URLSearchParams(body)
}

export async function startOAuthServer(t: TestContext, { scopes = ['tools'] }: { scopes?: string[] } = {}): Promise<OAuthTestServer> {
  const clients = new Map<string, { secret: string | undefined; redirectUris: string[] }>()
  const codes = new Map<string, { clientId: string; challenge: string; redirectUri: string; scope: string }>()
  const refreshTokens = new Map<string, { clientId: string; scope: string }>()
  const accessTokens = new Map<string, { expiresAt: number; scope: string }>()
  const machineClient = { id: 'machine-client', secret: `secret-${randomBytes(12).toString('hex')}` }
  clients.set(machineClient.id, { secret: machineClient.secret, redirectUris: [] })

  const issue = (clientId: string, scope: string, withRefresh: boolean) => {
    const access = token('access')
    accessTokens.set(access, { expiresAt: Date.now() + state.lifetimeSeconds * 1000, scope })
    state.issued.push(access)
    const refresh = withRefresh ? token('refresh') : undefined
    if (refresh) {
      refreshTokens.set(refresh, { clientId, scope })
      state.issued.push(refresh)
    }
    return { access_token: access, token_type: 'Bearer', expires_in: state.lifetimeSeconds, scope, ...(refresh ? { refresh_token: refresh } : {}) }
  }
  /** The client a token request authenticates as (Basic or in the body); undefined when it does not. */
  const clientOf = (req: IncomingMessage, form: URLSearchParams): string | undefined => {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')
    const [id, secret] = basic ? Buffer.from(basic[1]!, 'base64').toString().split(':').map(decodeURIComponent) : [form.get('client_id') ?? '', form.get('client_secret') ?? undefined]
    const client = clients.get(id ?? '')
    if (!client) return undefined
    return client.secret === undefined || client.secret === secret ? id : undefined
  }

  const http = createServer((req, res) => {
    if (state.unreachable) {
      req.socket.destroy()
      return
    }
    void (async () => {
      const url = new URL(req.url ?? '/', state.issuer)
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (req.method === 'GET' && url.pathname === '/.well-known/oauth-authorization-server') {
        return json(200, {
          issuer: state.issuer,
          authorization_endpoint: `${state.issuer}/authorize`,
          token_endpoint: `${state.issuer}/token`,
          registration_endpoint: `${state.issuer}/register`,
          response_types_supported: ['code'],
          grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
          scopes_supported: scopes,
        })
      }
      if (req.method === 'POST' && url.pathname === '/register') {
        let body = ''
        for await (const chunk of req) body += chunk
        const metadata = JSON.parse(body) as { redirect_uris?: string[] }
        const id = `client-${randomBytes(8).toString('hex')}`
        const secret = `secret-${randomBytes(12).toString('hex')}`
        clients.set(id, { secret, redirectUris: metadata.redirect_uris ?? [] })
        state.registered++
        return json(201, { ...metadata, client_id: id, client_secret: secret, token_endpoint_auth_method: 'client_secret_basic' })
      }
      if (req.method === 'GET' && url.pathname === '/authorize') {
        const q = url.searchParams
        const clientId = q.get('client_id') ?? ''
        const redirectUri = q.get('redirect_uri') ?? ''
        const client = clients.get(clientId)
        state.authorizations.push({ clientId, scope: q.get('scope') ?? undefined, redirectUri, resource: q.get('resource') ?? undefined })
        if (!client || !client.redirectUris.includes(redirectUri)) return json(400, { error: 'invalid_request', error_description: 'unknown client or redirect_uri' })
        if (q.get('response_type') !== 'code' || q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) return json(400, { error: 'invalid_request' })
        const code = token('code')
        codes.set(code, { clientId, challenge: q.get('code_challenge')!, redirectUri, scope: q.get('scope') ?? '' })
        const back = new URL(redirectUri)
        back.searchParams.set('code', code)
        back.searchParams.set('state', q.get('state') ?? '')
        back.searchParams.set('iss', state.issuer)
        return res.writeHead(302, { location: back.href }).end()
      }
      if (req.method === 'POST' && url.pathname === '/token') {
        const form = await readForm(req)
        const grant = form.get('grant_type') ?? ''
        state.grants.push(grant)
        const clientId = clientOf(req, form)
        if (!clientId) return json(401, { error: 'invalid_client' })
        if (grant === 'authorization_code') {
          const code = codes.get(form.get('code') ?? '')
          codes.delete(form.get('code') ?? '')
          if (!code || code.clientId !== clientId || code.redirectUri !== form.get('redirect_uri') || s256(form.get('code_verifier') ?? '') !== code.challenge) return json(400, { error: 'invalid_grant' })
          return json(200, issue(clientId, code.scope, true))
        }
        if (grant === 'refresh_token') {
          const refresh = refreshTokens.get(form.get('refresh_token') ?? '')
          refreshTokens.delete(form.get('refresh_token') ?? '')
          if (!refresh || refresh.clientId !== clientId) return json(400, { error: 'invalid_grant' })
          return json(200, issue(clientId, refresh.scope, true))
        }
        if (grant === 'client_credentials' && clientId === machineClient.id) return json(200, issue(clientId, form.get('scope') ?? scopes.join(' '), false))
        return json(400, { error: 'unsupported_grant_type' })
      }
      json(404, { error: 'not_found' })
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  })
  const state: OAuthTestServer = {
    issuer: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    grants: [],
    authorizations: [],
    registered: 0,
    issued: [],
    lifetimeSeconds: 3600,
    machineClient,
    unreachable: false,
    accepts(bearer, wanted = []) {
      const access = bearer === undefined ? undefined : accessTokens.get(bearer)
      const have = new Set(access?.scope.split(' '))
      return !!access && access.expiresAt > Date.now() && wanted.every((scope) => have.has(scope))
    },
    revoke: () => {
      refreshTokens.clear()
      accessTokens.clear()
    },
  }
  return state
}
