import type { AuthProvider, OAuthClientMetadata, OAuthClientProvider, OAuthDiscoveryState, StoredOAuthClientInformation, StoredOAuthTokens } from '@modelcontextprotocol/client'
import { createHash, randomBytes } from 'node:crypto'
import type { Logger } from '../observability/log.ts'
import type { McpOAuthConfig } from '../shared/mcp-config.ts'
import { HttpProblem } from '../shared/problem.ts'
import { seal, unseal } from '../shared/sealed.ts'
import type { McpAuthStore, PendingSignIn } from '../store/mcp-auth-store.ts'

/**
 * OAuth for one MCP server over HTTP (docs/tools.md "Servers that sign in with OAuth"), through the
 * official SDK's `auth()`: discovery (protected-resource and authorization-server metadata),
 * dynamic client registration, PKCE, refresh. Two ways in:
 * - client credentials from MCP_CONFIG: a token fetched when needed, kept in memory only;
 * - an admin's sign-in (authorization code): started by the admin route, finished by our callback;
 *   the grant (client, tokens, discovery) kept sealed in the database with MCP_OAUTH_KEY, so that
 *   every instance and every restart uses it.
 * A token is refreshed before it expires (REFRESH_AHEAD_MS). No token, secret or verifier is ever
 * logged, returned or stored in clear.
 */

/** How the SDK fetches (the transport hands its own to a 401's handling). */
type FetchFn = (url: string | URL, init?: RequestInit) => Promise<Response>

/** A token this close to its expiry is refreshed before it is sent. */
const REFRESH_AHEAD_MS = 60_000
/** How long a started sign-in waits for the browser to come back. */
const SIGN_IN_TTL_MS = 10 * 60_000
/** The callback the authorization server sends the admin's browser back to. */
export const CALLBACK_PATH = '/v1/mcp/oauth/callback'
/** How often a server waiting for a sign-in looks in the database for one made on another instance. */
const RECHECK_MS = 1_000

/** What is kept of a server's OAuth, sealed: the registered client, the tokens, what discovery found. */
interface Grant {
  client?: StoredOAuthClientInformation | undefined
  /** With `expires_at` (ms since the epoch) worked out when they were saved. */
  tokens?: (StoredOAuthTokens & { expires_at?: number }) | undefined
  discovery?: OAuthDiscoveryState | undefined
  /** The scope the next sign-in asks for: more than the tokens have, once the server asked for more. */
  scope?: string | undefined
  /** The callback the client was registered with. */
  redirectUrl?: string | undefined
  signedInAt?: string | undefined
}

/** A started sign-in's secrets, sealed in its row. */
interface SignInSecrets {
  verifier: string
  redirectUrl: string
  scope: string | undefined
}

/** Raised when the server wants a sign-in nobody has made (or one that no longer holds). */
export class SignInRequired extends Error {
  override name = 'SignInRequired'
}

/** The hash a sign-in's state is found by (the state itself is never stored). */
export const stateHash = (state: string): string => createHash('sha256').update(state).digest('base64url')

/** Whether `scopes` (space-separated) holds every one of `wanted`. */
const covers = (scopes: string | undefined, wanted: string | undefined): boolean => {
  const have = new Set((scopes ?? '').split(' ').filter(Boolean))
  return (wanted ?? '').split(' ').filter(Boolean).every((scope) => have.has(scope))
}
const union = (...lists: Array<string | undefined>): string | undefined => [...new Set(lists.flatMap((list) => (list ?? '').split(' ').filter(Boolean)))].join(' ') || undefined

export interface McpOAuthOptions {
  server: string
  url: string
  config: McpOAuthConfig
  /** Headers the server is sent (never an Authorization one: then there is no OAuth). */
  headers: Record<string, string>
  store: McpAuthStore
  key: Buffer | null
  log: Logger
  version: string
  /** Masks configured secrets in what is logged. */
  redact: (text: string) => string
}

export class McpOAuth {
  private readonly options: McpOAuthOptions
  private grant: Grant = {}
  /** The stored grant's version (0: none), or -1 before it was read. */
  private version = -1
  private refreshing: Promise<void> | undefined
  private lastCheck = 0
  /** The last challenge the server answered with (401 or 403): where its metadata is, what scope it wants. */
  private challenge: { resourceMetadataUrl?: URL | undefined; scope?: string | undefined } | undefined
  /** Set while the server wants a sign-in this service does not have. */
  signInRequired = false
  /** Set when the stored grant does not open with this instance's key: it is left as it is, unless an admin signs in here. */
  private unreadable = false

  constructor(options: McpOAuthOptions) {
    this.options = options
  }

  private get persistent(): boolean {
    return this.options.config.grant === 'authorization_code'
  }

  /** What the transport uses: the token for each request, and what to do with a 401. */
  authProvider(): AuthProvider {
    return { token: () => this.accessToken(), onUnauthorized: (ctx) => this.unauthorized(ctx.response, ctx.fetchFn) }
  }

  /** The token to send now: refreshed first when it is about to expire; fetched first with client credentials. */
  async accessToken(): Promise<string | undefined> {
    await this.load()
    const { tokens } = this.grant
    // Client credentials are fetched before the first request once the server has said where its authorization server is.
    const clientCredentials = this.options.config.grant === 'client_credentials'
    const due = tokens ? tokens.expires_at !== undefined && tokens.expires_at - Date.now() < REFRESH_AHEAD_MS : clientCredentials && (this.challenge !== undefined || this.grant.discovery !== undefined)
    if (due && (tokens?.refresh_token || clientCredentials)) {
      await (this.refreshing ??= this.renew(undefined, fetch).catch((error: unknown) => {
        this.options.log.warn('mcp oauth refresh failed', { server: this.options.server, error: this.describe(error) })
        // Ahead of expiry (the authorization server down, say): the token that still works is used,
        // and a sign-in is asked for only once the server refuses it (a 401).
        const left = this.grant.tokens
        if (left?.access_token && (left.expires_at ?? Infinity) > Date.now() && covers(left.scope, this.grant.scope)) this.signInRequired = false
      }).finally(() => {
        this.refreshing = undefined
      }))
    }
    return this.grant.tokens?.access_token
  }

  /**
   * A 401 from the server: a grant another instance saved meanwhile is used; else the tokens are
   * refreshed (or new client credentials fetched); else a sign-in is required.
   */
  private async unauthorized(response: Response, fetchFn: FetchFn | undefined): Promise<void> {
    const { extractWWWAuthenticateParams } = await import('@modelcontextprotocol/client')
    const sent = this.grant.tokens?.access_token
    const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(response)
    this.challenge = { resourceMetadataUrl, scope }
    await this.load(true)
    if (this.grant.tokens?.access_token && this.grant.tokens.access_token !== sent) return
    if (this.options.config.grant === 'client_credentials' || this.grant.tokens?.refresh_token) {
      try {
        await this.renew(scope, fetchFn ?? fetch)
        if (this.grant.tokens?.access_token) return
      } catch (error) {
        this.options.log.warn('mcp oauth refresh failed', { server: this.options.server, error: this.describe(error) })
      }
    }
    this.requireSignIn(scope)
    throw new SignInRequired(`${this.options.server} needs an admin to sign in (POST /v1/admin/mcp/${this.options.server}/sign-in)`)
  }

  /** The server asked for more scope than the tokens have (a 403 insufficient_scope): the next sign-in asks for it. */
  async needsScope(scope: string | undefined): Promise<void> {
    await this.load(true)
    this.requireSignIn(scope)
  }

  private requireSignIn(scope: string | undefined): void {
    const wanted = union(this.grant.tokens?.scope, scope)
    if (scope && !covers(this.grant.tokens?.scope, scope) && wanted !== this.grant.scope) {
      this.grant.scope = wanted
      void this.save().catch(() => {})
    }
    if (!this.signInRequired) this.options.log.warn('mcp server needs sign-in', { server: this.options.server, grant: this.options.config.grant })
    this.signInRequired = true
  }

  /** New tokens: a refresh (authorization code) or new client credentials; SignInRequired when neither works. */
  private async renew(scope: string | undefined, fetchFn: FetchFn): Promise<void> {
    const { auth } = await import('@modelcontextprotocol/client')
    const result = await auth(this.provider(), {
      serverUrl: this.options.url,
      resourceMetadataUrl: this.challenge?.resourceMetadataUrl ?? (this.grant.discovery?.resourceMetadataUrl ? new URL(this.grant.discovery.resourceMetadataUrl) : undefined),
      scope: scope ?? this.options.config.scope,
      fetchFn,
    })
    if (result !== 'AUTHORIZED') throw new SignInRequired('the refresh was refused')
    this.signInRequired = false
    this.options.log.debug('mcp oauth tokens renewed', { server: this.options.server })
  }

  /**
   * Starts an admin's sign-in: the authorization server's address to send their browser to
   * (with PKCE and a state good once, for SIGN_IN_TTL_MS), the callback at `redirectUrl`.
   */
  async startSignIn(redirectUrl: string, startedBy: string | null): Promise<{ authorizationUrl: string; expiresAt: string }> {
    const { config, key } = this.options
    if (config.grant !== 'authorization_code') throw new HttpProblem(409, 'conflict', `${this.options.server} signs in with client credentials from MCP_CONFIG; there is nothing to sign in to.`)
    if (!key) throw new HttpProblem(409, 'conflict', 'MCP_OAUTH_KEY is not set: the tokens a sign-in gets could not be stored encrypted. Set it (openssl rand -base64 32) and restart.')
    const { auth } = await import('@modelcontextprotocol/client')
    await this.load(true)
    this.challenge ??= await this.probe()
    // A client registered for another callback cannot come back to this one: register again.
    if (this.grant.redirectUrl !== redirectUrl && !config.clientId) this.grant.client = undefined
    this.grant.redirectUrl = redirectUrl
    const state = randomBytes(32).toString('base64url')
    const scope = this.grant.scope ?? this.challenge?.scope ?? config.scope
    let verifier: string | undefined
    let authorizationUrl: URL | undefined
    const result = await auth(this.provider({ redirectUrl, state, keepVerifier: (value) => (verifier = value), redirect: (url) => (authorizationUrl = url) }), {
      serverUrl: this.options.url,
      resourceMetadataUrl: this.challenge?.resourceMetadataUrl,
      scope,
      forceReauthorization: true,
    }).catch((error: unknown) => {
      // Discovery, registration or metadata that does not hold (an issuer that is not its address…): the admin is told what.
      this.options.log.warn('mcp sign-in could not start', { server: this.options.server, error: this.describe(error) })
      throw new HttpProblem(502, 'tools_unavailable', `The sign-in to ${this.options.server} could not start: ${this.describe(error).slice(0, 500)}`)
    })
    if (result !== 'REDIRECT' || !authorizationUrl || !verifier) throw new HttpProblem(502, 'tools_unavailable', `${this.options.server}'s authorization server did not start a sign-in.`)
    await this.save(true)
    const expiresAt = new Date(Date.now() + SIGN_IN_TTL_MS).toISOString()
    const secrets: SignInSecrets = { verifier, redirectUrl, scope: authorizationUrl.searchParams.get('scope') ?? undefined }
    await this.options.store.startSignIn({ stateHash: stateHash(state), server: this.options.server, sealed: seal(key, this.signInContext, secrets), startedBy, expiresAt })
    this.options.log.info('mcp sign-in started', { server: this.options.server, by: startedBy })
    return { authorizationUrl: authorizationUrl.href, expiresAt }
  }

  /** Finishes a sign-in the callback brought back: the code exchanged for tokens, which are stored sealed. */
  async finishSignIn(signIn: PendingSignIn, code: string, iss: string | undefined): Promise<void> {
    const secrets = this.options.key && unseal<SignInSecrets>(this.options.key, this.signInContext, signIn.sealed)
    if (!secrets) throw new HttpProblem(400, 'validation', 'This sign-in cannot be read with the current MCP_OAUTH_KEY; start it again.')
    const { auth } = await import('@modelcontextprotocol/client')
    await this.load(true)
    const result = await auth(this.provider({ redirectUrl: secrets.redirectUrl, verifier: secrets.verifier }), {
      serverUrl: this.options.url,
      authorizationCode: code,
      iss,
      scope: secrets.scope,
      resourceMetadataUrl: this.grant.discovery?.resourceMetadataUrl ? new URL(this.grant.discovery.resourceMetadataUrl) : undefined,
    })
    if (result !== 'AUTHORIZED') throw new HttpProblem(502, 'tools_unavailable', 'The authorization server gave no tokens.')
    if (covers(this.grant.tokens?.scope, this.grant.scope)) this.grant.scope = undefined
    this.grant.signedInAt = new Date().toISOString()
    await this.save(true)
    this.signInRequired = false
    this.options.log.info('mcp signed in', { server: this.options.server, by: signIn.startedBy })
  }

  /** Forgets the grant (an admin's sign-out): the server needs a new sign-in. */
  async signOut(): Promise<void> {
    await this.options.store.dropGrant(this.options.server)
    this.grant = {}
    this.version = 0
  }

  /** What the server answers a request without a token: where its metadata is and what scope it wants (nothing when it does not say). */
  private async probe(): Promise<{ resourceMetadataUrl?: URL | undefined; scope?: string | undefined } | undefined> {
    const { extractWWWAuthenticateParams } = await import('@modelcontextprotocol/client')
    const response = await fetch(this.options.url, {
      method: 'POST',
      headers: { ...this.options.headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'chat-ollama', version: this.options.version } } }),
      redirect: 'manual',
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined)
    await response?.body?.cancel().catch(() => {})
    if (response?.status !== 401 && response?.status !== 403) return undefined
    const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(response)
    return { resourceMetadataUrl, scope }
  }

  /**
   * The grant from the database (authorization code): at first use, when `fresh` is asked, and
   * every RECHECK_MS while a sign-in is needed (another instance may have made it).
   */
  private async load(fresh = false): Promise<void> {
    if (!this.persistent || !this.options.key) return
    if (this.version >= 0 && !fresh && !(this.signInRequired && Date.now() - this.lastCheck > RECHECK_MS)) return
    this.lastCheck = Date.now()
    const stored = await this.options.store.grant(this.options.server)
    if (stored?.version === this.version) return
    const grant = stored && unseal<Grant>(this.options.key, this.grantContext, stored.sealed)
    this.unreadable = !!stored && !grant
    if (this.unreadable) this.options.log.warn('mcp oauth grant unreadable', { server: this.options.server, reason: 'sealed with another MCP_OAUTH_KEY: sign in again' })
    this.grant = grant ?? {}
    this.version = stored?.version ?? 0
    // Another instance's sign-in or refresh: good unless the tokens lack a scope the server asked for.
    if (this.grant.tokens) this.signInRequired = this.grant.scope !== undefined && !covers(this.grant.tokens.scope, this.grant.scope)
  }

  /**
   * Writes the grant (authorization code); when another instance wrote it meanwhile, theirs is
   * kept. A grant this instance cannot read is overwritten only by a sign-in made here (`signingIn`).
   */
  private async save(signingIn = false): Promise<void> {
    if (!this.persistent || !this.options.key || (this.unreadable && !signingIn)) return
    this.unreadable = false
    const written = await this.options.store.saveGrant(this.options.server, seal(this.options.key, this.grantContext, this.grant), Math.max(this.version, 0), new Date().toISOString())
    if (written === false) await this.load(true)
    else this.version = written
  }

  private get grantContext(): string {
    return `mcp-oauth-grant:${this.options.server}`
  }

  private get signInContext(): string {
    return `mcp-oauth-sign-in:${this.options.server}`
  }

  /**
   * What the SDK's `auth()` works through: this server's client and grant; for a sign-in, its
   * callback, state and PKCE verifier (kept by the caller, never here).
   */
  private provider(signIn: { redirectUrl: string; state?: string; verifier?: string; keepVerifier?: (verifier: string) => void; redirect?: (url: URL) => void } | undefined = undefined): OAuthClientProvider {
    const { config, version } = this.options
    const redirectUrl = signIn?.redirectUrl ?? this.grant.redirectUrl
    const clientCredentials = config.grant === 'client_credentials'
    const metadata: OAuthClientMetadata = {
      client_name: 'chat-ollama',
      software_version: version,
      redirect_uris: redirectUrl && !clientCredentials ? [redirectUrl] : [],
      grant_types: clientCredentials ? ['client_credentials'] : ['authorization_code', 'refresh_token'],
      response_types: clientCredentials ? [] : ['code'],
      ...(config.scope ? { scope: config.scope } : {}),
    }
    const configured = config.clientId ? { client_id: config.clientId, ...(config.clientSecret ? { client_secret: config.clientSecret } : {}), ...(config.grant === 'client_credentials' && config.issuer ? { issuer: config.issuer } : {}) } : undefined
    return {
      // Client credentials sign in with no browser: the SDK takes that from a missing redirect address.
      get redirectUrl() {
        return clientCredentials ? undefined : redirectUrl ?? 'http://localhost/unset'
      },
      clientMetadata: metadata,
      state: () => signIn?.state ?? randomBytes(32).toString('base64url'),
      clientInformation: () => configured ?? this.grant.client,
      saveClientInformation: (client) => {
        if (!configured) this.grant.client = client
      },
      tokens: () => this.grant.tokens,
      saveTokens: async (tokens) => {
        this.grant.tokens = { ...tokens, ...(tokens.expires_in !== undefined ? { expires_at: Date.now() + tokens.expires_in * 1000 } : {}) }
        await this.save()
      },
      saveCodeVerifier: (verifier) => signIn?.keepVerifier?.(verifier),
      codeVerifier: () => {
        if (!signIn?.verifier) throw new Error('no sign-in is under way')
        return signIn.verifier
      },
      redirectToAuthorization: (url) => {
        // Outside a sign-in there is no browser to send: the server waits for an admin.
        if (signIn?.redirect) signIn.redirect(url)
        else this.requireSignIn(undefined)
      },
      discoveryState: () => this.grant.discovery,
      saveDiscoveryState: (state) => {
        this.grant.discovery = state
      },
      // The SDK drops what the authorization server refused (a revoked refresh token, an unknown client); stored so every instance stops using it.
      invalidateCredentials: async (what) => {
        if (what === 'all' || what === 'client') this.grant.client = undefined
        if (what === 'all' || what === 'tokens') this.grant.tokens = undefined
        if (what === 'all' || what === 'discovery') this.grant.discovery = undefined
        if (what !== 'verifier') await this.save()
      },
      ...(clientCredentials ? { prepareTokenRequest: (scope?: string) => new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }) } : {}),
    }
  }

  /** An error's message with every secret of this server masked (configured ones and the current tokens). */
  describe(error: unknown): string {
    const text = this.options.redact((error as Error)?.message ?? String(error))
    const { tokens, client } = this.grant
    return [tokens?.access_token, tokens?.refresh_token, client?.client_secret].filter((secret): secret is string => !!secret).reduce((masked, secret) => masked.replaceAll(secret, '***'), text)
  }
}
