/**
 * MCP servers that sign in with OAuth (docs/tools.md "Servers that sign in with OAuth"): an admin's
 * sign-in (discovery, dynamic registration, PKCE, a state good once), tokens stored sealed and
 * refreshed before they expire, used by every instance and after a restart; client credentials
 * from MCP_CONFIG; a wider scope asked for when a tool needs it. Against a small authorization
 * server and an MCP server made with the official SDK, through the real server's routes. On both
 * backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import adminMcpSignIn from '../functions/admin-mcp-sign-in.ts'
import adminMcpSignOut from '../functions/admin-mcp-sign-out.ts'
import chat from '../functions/chat.ts'
import mcpOAuthCallback from '../functions/mcp-oauth-callback.ts'
import toolsList from '../functions/tools-list.ts'
import type { AppContext } from '../lib/context.ts'
import { authServer, chatRequest, fakeOllama, json, readSse, recordingLogger, storedRows, storeEnv, STORE, testApp, toRequest, type Env } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { startMcpHttpServer, type McpHttpServer } from './support/mcp-http-server.ts'
import { startOAuthServer, type OAuthTestServer } from './support/oauth-server.ts'

const newKey = () => randomBytes(32).toString('base64')

function mcpConfig(servers: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-oauth-')), 'mcp.json')
  writeFileSync(path, JSON.stringify({ mcpServers: servers }))
  return path
}

/** The store variables two apps share (one database), whichever the backend. */
async function sharedStore(): Promise<Env> {
  return STORE === 'postgres' ? await storeEnv() : { DB_PATH: join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-oauth-')), 'chat.db') }
}

interface Setup {
  fake: FakeOllama
  oauth: OAuthTestServer
  mcp: McpHttpServer
  env: Env
  log: ReturnType<typeof recordingLogger>
  app: AppContext
  /** Another app (instance, or the server after a restart) on the same database, with `env` over the first's. */
  another(env?: Env): Promise<AppContext>
}

async function setup(t: TestContext, { callScopes, env: extra = {} }: { callScopes?: string[]; env?: Env } = {}): Promise<Setup> {
  const fake = await fakeOllama(t)
  const oauth = await startOAuthServer(t, { scopes: ['tools', 'write'] })
  const mcp = await startMcpHttpServer(t, { oauth, scopes: ['tools'], ...(callScopes ? { callScopes } : {}) })
  const env = { MCP_CONFIG: mcpConfig({ notes: { url: mcp.url, default: 'auto' } }), MCP_OAUTH_KEY: newKey(), ...await sharedStore(), ...extra }
  const log = recordingLogger()
  const open = async (overrides: Env = {}, logger = log) => {
    const app = await testApp(t, fake, { ...env, ...overrides }, logger)
    t.after(() => app.tools.close())
    return app
  }
  return { fake, oauth, mcp, env, log, app: await open(), another: (overrides = {}) => open(overrides, recordingLogger()) }
}

const listing = async (app: AppContext) => (await json(await toolsList.fetch(toRequest('GET /v1/tools'), app))).servers.find((server: any) => server.name === 'notes')

/** An admin's sign-in, the browser's part played here: the authorization server's redirect followed to the callback (on `callbackApp`). */
async function signIn(app: AppContext, callbackApp = app): Promise<{ started: any; callback: URL; page: Response }> {
  const response = await adminMcpSignIn.fetch(toRequest('POST /v1/admin/mcp/notes/sign-in'), app)
  assert.equal(response.status, 201, await response.clone().text())
  const started = await json(response)
  const approved = await fetch(started.authorization_url, { redirect: 'manual' })
  assert.equal(approved.status, 302)
  const callback = new URL(approved.headers.get('location')!)
  return { started, callback, page: await mcpOAuthCallback.fetch(new Request(callback), callbackApp) }
}

async function callAdd(app: AppContext): Promise<any[]> {
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Sum [[call notes__add {"a":2,"b":3}]]', model: 'qwen3:8b', tools: true }), app))
  return events.map((event) => event.data)
}

test('a server that wants OAuth waits for an admin\'s sign-in; the sign-in (registration, PKCE S256, a state good once) gets tokens, stored sealed and used for its tools', async (t) => {
  const { app, oauth, mcp, log } = await setup(t)
  assert.equal((await listing(app)).status, 'sign_in_required')
  const refused = await chat.fetch(chatRequest({ message: 'hi', model: 'qwen3:8b', tools: ['notes__add'] }), app)
  assert.equal(refused.status, 400)
  assert.match((await json(refused)).detail, /notes needs an admin to sign in/)

  const { started, callback, page } = await signIn(app)
  const asked = new URL(started.authorization_url)
  assert.equal(asked.origin + asked.pathname, `${oauth.issuer}/authorize`)
  assert.equal(asked.searchParams.get('code_challenge_method'), 'S256')
  assert.equal(asked.searchParams.get('redirect_uri'), 'http://localhost/v1/mcp/oauth/callback')
  assert.equal(asked.searchParams.get('scope'), 'tools', 'the scope the server\'s 401 named')
  assert.equal(asked.searchParams.get('resource'), mcp.url, 'the token is asked for this server (RFC 8707)')
  assert.equal(oauth.registered, 1)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /notes is signed in/)
  assert.equal(page.headers.get('content-security-policy')?.startsWith("default-src 'none'"), true)

  assert.equal((await listing(app)).status, 'ok')
  const events = await callAdd(app)
  assert.equal(events.find((event) => event.type === 'tool_result')?.content, '5')
  assert.ok(mcp.bearers.length > 0 && mcp.bearers.every((bearer) => oauth.accepts(bearer)))

  const again = await mcpOAuthCallback.fetch(new Request(callback), app)
  assert.equal(again.status, 400, 'a state is good once')
  assert.match(await again.text(), /unknown, was already used, or ran out/)

  // Nothing secret in clear: not in the database, not in the log.
  const stored = JSON.stringify(await storedRows(app, 'SELECT * FROM mcp_oauth_grants')) + JSON.stringify(await storedRows(app, 'SELECT * FROM mcp_oauth_sign_ins'))
  const logged = JSON.stringify(log.entries)
  assert.ok(stored.includes('v1.'), 'the grant is stored, sealed')
  for (const secret of [...oauth.issued, 'secret-', callback.searchParams.get('code')!]) {
    assert.ok(!stored.includes(secret) && !logged.includes(secret), `${secret.slice(0, 12)}… is not stored or logged in clear`)
  }
  const audit = await storedRows(app, "SELECT action, target FROM audit_log WHERE action LIKE 'mcp_%'")
  assert.deepEqual(audit, [{ action: 'mcp_sign_in_start', target: 'mcp:notes' }])
})

test('tokens are refreshed before they expire; another instance and a restart use the stored grant; another key, a revoked grant or a sign-out ask for a new sign-in', async (t) => {
  const { app, oauth, mcp, another } = await setup(t)
  oauth.lifetimeSeconds = 30 // less than the minute before expiry at which a token is refreshed
  const second = await another()
  const { page } = await signIn(app, second)
  assert.equal(page.status, 200, 'the callback may reach another instance than the one that started the sign-in')
  oauth.lifetimeSeconds = 3600

  assert.equal((await callAdd(app)).find((event) => event.type === 'tool_result')?.content, '5')
  assert.ok(oauth.grants.includes('refresh_token'), oauth.grants.join(', '))
  assert.equal(mcp.bearers.at(-1), oauth.issued.at(-2), 'the refreshed token was used (the last issued are its access and refresh tokens)')

  const restarted = await another()
  assert.equal((await listing(restarted)).status, 'ok')
  assert.equal((await callAdd(restarted)).find((event) => event.type === 'tool_result')?.content, '5')
  assert.equal(oauth.authorizations.length, 1, 'no second sign-in')

  const otherKey = await another({ MCP_OAUTH_KEY: newKey() })
  assert.equal((await listing(otherKey)).status, 'sign_in_required')

  assert.equal((await listing(await another())).status, 'ok', 'an instance with another key left the grant as it was')

  oauth.revoke()
  const revoked = await another()
  // Refused (401), then the refresh is refused too.
  assert.equal((await listing(revoked)).status, 'sign_in_required')
  assert.ok(oauth.grants.filter((grant) => grant === 'refresh_token').length >= 2)

  assert.equal((await adminMcpSignOut.fetch(toRequest('DELETE /v1/admin/mcp/notes/sign-in'), app)).status, 204)
  assert.deepEqual(await storedRows(app, 'SELECT server FROM mcp_oauth_grants'), [])
})

test('the authorization server down when a refresh is due: the token that still works is used and the server stays listed ok; the refresh happens once it is back', async (t) => {
  const { app, oauth, mcp, log } = await setup(t)
  oauth.lifetimeSeconds = 30 // less than the minute before expiry at which a token is refreshed
  await signIn(app)
  oauth.unreachable = true
  assert.equal((await callAdd(app)).find((event) => event.type === 'tool_result')?.content, '5')
  assert.ok(log.entries.some((entry) => entry.message === 'mcp oauth refresh failed'))
  assert.equal((await listing(app)).status, 'ok', 'a refresh that could not be made is no reason to sign in again')
  assert.ok(!oauth.grants.includes('refresh_token'))
  oauth.unreachable = false
  oauth.lifetimeSeconds = 3600
  assert.equal((await callAdd(app)).find((event) => event.type === 'tool_result')?.content, '5')
  assert.ok(oauth.grants.includes('refresh_token'))
  assert.equal(mcp.bearers.at(-1), oauth.issued.at(-2), 'the refreshed token is used')
})

test('a tool that needs more scope (403 insufficient_scope): the call fails saying so, and the next sign-in asks for the wider scope', async (t) => {
  const { app, oauth } = await setup(t, { callScopes: ['tools', 'write'] })
  await signIn(app)
  const events = await callAdd(app)
  const result = events.find((event) => event.type === 'tool_result')
  assert.equal(result?.ok, false)
  assert.match(result?.content, /needs a wider sign-in/)
  assert.equal((await listing(app)).status, 'sign_in_required')
  await signIn(app)
  assert.equal(oauth.authorizations.at(-1)?.scope, 'tools write')
  assert.equal((await callAdd(app)).find((event) => event.type === 'tool_result')?.content, '5')
})

test('client credentials from MCP_CONFIG: a token fetched with the secret (Basic), no key needed, nothing stored; a sign-in is refused', async (t) => {
  const fake = await fakeOllama(t)
  const oauth = await startOAuthServer(t)
  const mcp = await startMcpHttpServer(t, { oauth, scopes: ['tools'] })
  const { id, secret } = oauth.machineClient
  const log = recordingLogger()
  const app = await testApp(t, fake, { MCP_CONFIG: mcpConfig({ notes: { url: mcp.url, default: 'auto', oauth: { grant: 'client_credentials', client_id: id, client_secret: secret, issuer: oauth.issuer } } }) }, log)
  t.after(() => app.tools.close())
  assert.equal((await callAdd(app)).find((event) => event.type === 'tool_result')?.content, '5')
  assert.deepEqual(oauth.grants, ['client_credentials'])
  assert.deepEqual(await storedRows(app, 'SELECT server FROM mcp_oauth_grants'), [])
  assert.ok(!JSON.stringify(log.entries).includes(secret))
  const signIn = await adminMcpSignIn.fetch(toRequest('POST /v1/admin/mcp/notes/sign-in'), app)
  assert.equal(signIn.status, 409)
  assert.match((await json(signIn)).detail, /client credentials/)
})

test('a sign-in without MCP_OAUTH_KEY is refused (409) and stores nothing; an unknown server is a 404', async (t) => {
  const { app } = await setup(t, { env: { MCP_OAUTH_KEY: '' } })
  const refused = await adminMcpSignIn.fetch(toRequest('POST /v1/admin/mcp/notes/sign-in'), app)
  assert.equal(refused.status, 409)
  assert.match((await json(refused)).detail, /MCP_OAUTH_KEY is not set/)
  assert.deepEqual(await storedRows(app, 'SELECT state_hash FROM mcp_oauth_sign_ins'), [])
  assert.equal((await adminMcpSignIn.fetch(toRequest('POST /v1/admin/mcp/nowhere/sign-in'), app)).status, 404)
})

test('over the socket with AUTH=required: only an admin starts a sign-in; the callback needs no sign-in of its own but a state it issued', async (t) => {
  const fake = await fakeOllama(t)
  const oauth = await startOAuthServer(t)
  const mcp = await startMcpHttpServer(t, { oauth, scopes: ['tools'] })
  const server = await authServer(t, fake, { MCP_CONFIG: mcpConfig({ notes: { url: mcp.url } }), MCP_OAUTH_KEY: newKey() })
  const user = await server.userWithKey('ann')
  const admin = await server.userWithKey('root', 'admin')
  const start = (headers: Record<string, string>) => fetch(`${server.url}/v1/admin/mcp/notes/sign-in`, { method: 'POST', headers })
  assert.equal((await start(user.headers)).status, 403)
  const started = await start(admin.headers)
  assert.equal(started.status, 201)
  const { authorization_url: url, redirect_uri: redirectUri } = await started.json() as { authorization_url: string; redirect_uri: string }
  assert.equal(redirectUri, `${server.url}/v1/mcp/oauth/callback`)
  const forged = await fetch(`${server.url}/v1/mcp/oauth/callback?code=x&state=${'a'.repeat(43)}`)
  assert.equal(forged.status, 400)
  const location = (await fetch(url, { redirect: 'manual' })).headers.get('location')!
  const page = await fetch(location)
  assert.equal(page.status, 200)
  const tools = await (await fetch(`${server.url}/v1/tools`, { headers: user.headers })).json() as { servers: Array<{ status: string }> }
  assert.equal(tools.servers[0]!.status, 'ok')
})
