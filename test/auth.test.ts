import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { AccessControl } from '../lib/access/control.ts'
import { WEB_SESSION_MS } from '../lib/store/access-store.ts'
import { runAdmin } from '../lib/admin.ts'
import { ConfigError, loadConfig } from '../lib/shared/config.ts'
import { createAppContext } from '../lib/app.ts'
import { createDispatcher } from '../lib/http/dispatcher.ts'
import { silentLogger } from '../lib/observability/log.ts'
import { SqliteStore } from '../lib/store/sqlite/store.ts'
import { FUNCTIONS } from '../lib/server.ts'
import { authServer, json, rowCounts, sqliteOnly, storedRows, testConfig, toRequest } from './support/app.ts'
import { PROJECT_ROOT, SERVER_FROM_SOURCE, spawnServer } from './support/process.ts'

const SOME_ID = '0b6e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4'

/** One request per mounted route, with its parameters filled in. */
const everyRoute = FUNCTIONS.flatMap((fn) =>
  [fn.path, ...(fn.alsoAt ?? [])].map((path) => ({
    fn,
    method: fn.method,
    path: path.replace(':id', fn.path.startsWith('/v1/admin/keys') ? 'key_x' : SOME_ID).replace(':name', 'nobody').replace('/*', '/app.js'),
  })),
)

const send = (url: string, method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
  fetch(`${url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })

test('AUTH follows HOST: off on loopback, required elsewhere; off with a non-loopback HOST stops start-up with one line', () => {
  assert.equal(loadConfig({}).auth, 'off')
  assert.equal(loadConfig({ HOST: '0.0.0.0' }).auth, 'required')
  assert.equal(loadConfig({ HOST: '127.0.0.1', AUTH: 'required' }).auth, 'required')
  assert.throws(() => loadConfig({ HOST: '0.0.0.0', AUTH: 'off' }), (error: Error) => {
    assert.ok(error instanceof ConfigError)
    assert.match(error.message, /^AUTH="off" is not valid with HOST="0\.0\.0\.0"/)
    assert.doesNotMatch(error.message, /\n/)
    return true
  })
})

test('with AUTH required, every route but /health, the page and sign-in answers 401 without a key, and with a wrong one', async (t) => {
  const { url } = await authServer(t, null)
  const publicPaths = new Set(['/health', '/', '/assets/app.js', '/favicon.ico'])
  const expectUnauthorized = async (response: Response, what: string, errors: 'problem' | 'openai' = 'problem') => {
    assert.equal(response.status, 401, what)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="chat-ollama"')
    const body = await json(response)
    // The OpenAI-compatible routes answer in OpenAI's shape, so its SDKs raise AuthenticationError.
    if (errors === 'openai') assert.equal(body.error.type, 'authentication_error', what)
    else assert.equal(body.type, 'https://api.chat-ollama.com/errors/unauthorized', what)
  }
  for (const { fn, method, path } of everyRoute) {
    const response = await send(url, method, path, {}, method === 'POST' || method === 'PATCH' ? {} : undefined)
    if (publicPaths.has(path) || fn.access === 'public') assert.notEqual(response.status, 401, `${method} ${path} is public`)
    else await expectUnauthorized(response, `${method} ${path} without a key`, fn.errors)
  }
  // Wrong credentials count against the address's budget of failures (10), so a few suffice here.
  const wrong: Array<Record<string, string>> = [
    { authorization: 'Bearer cko_0000000000000000000000000000000000000000000' },
    { authorization: 'Bearer not-even-a-key' },
    { authorization: 'Basic YWxpY2U6eA==' },
    { cookie: 'chat_ollama_session=forged' },
  ]
  for (const headers of wrong) await expectUnauthorized(await send(url, 'GET', '/v1/sessions', headers), JSON.stringify(headers))
})

test('every route that needs a key refuses a wrong, an expired and a revoked one alike: 401, nothing run', async (t) => {
  const config = testConfig({ AUTH: 'required', RATE_LIMIT: '0' })
  const database = new SqliteStore(':memory:')
  t.after(() => database.close())
  const accessStore = database.access
  // A budget of failures large enough to try every route (the limit itself is tested below).
  const app = createAppContext(config, { database, log: silentLogger, access: new AccessControl(config, accessStore, silentLogger, { failuresPerMinute: 10_000 }) })
  const dispatcher = createDispatcher(FUNCTIONS, app)
  await accessStore.addUser('kim', 'admin')
  const expired = (await accessStore.createKey('kim', { expiresAt: new Date(Date.now() - 1).toISOString() })).key
  const revoked = await accessStore.createKey('kim')
  await accessStore.revokeKey(revoked.info.id)
  const before = await rowCounts(app)
  for (const { fn, method, path } of everyRoute.filter((route) => route.fn.access !== 'public')) {
    for (const [what, key] of [['wrong', 'cko_' + 'w'.repeat(43)], ['expired', expired], ['revoked', revoked.key]] as const) {
      const request = toRequest(`${method} ${path}`, method === 'POST' || method === 'PATCH' ? { message: 'x', title: 'x', name: 'x', user: 'kim' } : undefined, { authorization: `Bearer ${key}` })
      const response = await dispatcher.fetch(request)
      assert.equal(response.status, 401, `${fn.name} with a ${what} key`)
    }
  }
  assert.deepEqual(await rowCounts(app), before)
  assert.equal((await accessStore.listUsers()).length, 1)
})

test('a key works as a Bearer token only, never in a query string; expired and revoked keys are refused at once', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const alice = await userWithKey('alice')
  assert.equal((await send(url, 'GET', '/v1/sessions', alice.headers)).status, 200)
  assert.equal((await send(url, 'GET', `/v1/sessions?api_key=${alice.key}&key=${alice.key}`)).status, 401)

  const expired = await app.access.store.createKey('alice', { expiresAt: new Date(Date.now() - 1000).toISOString() })
  assert.equal((await send(url, 'GET', '/v1/sessions', { authorization: `Bearer ${expired.key}` })).status, 401)

  await app.access.store.revokeKey(alice.keyId)
  assert.equal((await send(url, 'GET', '/v1/sessions', alice.headers)).status, 401)
})

test('npm run admin, in another process while the server runs: users, keys, revocation on the next request, exit codes', async (t) => {
  const { url, storeVariables } = await authServer(t, null, { RATE_LIMIT: '0' })
  const admin = (...args: string[]) => {
    try {
      return { code: 0, out: execFileSync(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'lib/admin.ts'), ...args], { env: { ...process.env, ...storeVariables, HOST: '127.0.0.1' }, encoding: 'utf8', stdio: 'pipe' }) }
    } catch (error) {
      const failed = error as { status: number; stdout: string; stderr: string }
      return { code: failed.status, out: failed.stdout + failed.stderr }
    }
  }
  assert.match(admin('user', 'add', 'bob').out, /^usr_\S+\tbob\tuser\n$/)
  assert.equal(admin('user', 'add', 'bob').code, 4, 'a second bob is a conflict')
  assert.equal(admin('key', 'create', 'nobody').code, 3, 'no such user')
  assert.equal(admin('key', 'frobnicate').code, 2, 'usage')
  const created = admin('key', 'create', 'bob', '--name', 'laptop', '--expires', '720h')
  assert.equal(created.code, 0)
  const lines = created.out.trim().split('\n')
  const key = lines.at(-1)!
  assert.match(key, /^cko_[\w-]{43}$/, 'the key alone on the last line')
  const keyId = lines[0]!.split('\t')[0]!
  const listed = admin('key', 'list', 'bob').out
  assert.match(listed, new RegExp(`^${keyId}\\tbob\\tlaptop\\t`))
  assert.ok(!listed.includes(key), 'key list never prints the secret')

  assert.equal((await send(url, 'GET', '/v1/sessions', { authorization: `Bearer ${key}` })).status, 200)
  assert.equal(admin('key', 'revoke', keyId).code, 0)
  assert.equal((await send(url, 'GET', '/v1/sessions', { authorization: `Bearer ${key}` })).status, 401, 'revoked by another process: refused on the next request')
  assert.equal(admin('key', 'revoke', keyId).code, 4, 'revoking twice is a conflict')
  assert.equal(admin('key', 'revoke', 'key_nothing').code, 3)
})

test('failed credentials are limited per address: past 10 only failing attempts are refused (429), a valid key from the same address still works', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const carol = await userWithKey('carol')
  const staleCookie = `chat_ollama_session=${'s'.repeat(43)}`
  // A client with an empty header or a browser with a sign-in that ended is not guessing keys.
  for (let attempt = 0; attempt < 15; attempt++) {
    assert.equal((await send(url, 'GET', '/v1/sessions', { authorization: '' })).status, 401)
    assert.equal((await send(url, 'GET', '/v1/sessions', { cookie: staleCookie })).status, 401)
  }
  for (let attempt = 0; attempt < 10; attempt++) {
    const guess = `cko_${String(attempt).padStart(43, 'x')}`
    assert.equal((await send(url, 'GET', '/v1/sessions', { authorization: `Bearer ${guess}` })).status, 401)
  }
  const blocked = await send(url, 'GET', '/v1/sessions', { authorization: `Bearer cko_${'y'.repeat(43)}` })
  assert.equal(blocked.status, 429, 'the 11th wrong key')
  assert.ok(Number(blocked.headers.get('retry-after')) >= 1)
  assert.equal((await send(url, 'POST', '/v1/auth/login', {}, { api_key: 'cko_wrong' })).status, 429, 'the sign-in form is limited too')

  assert.equal((await send(url, 'GET', '/v1/sessions', carol.headers)).status, 200, 'a valid key from the same address (behind a proxy: every user) still works')
  assert.equal((await send(url, 'POST', '/v1/auth/login', {}, { api_key: carol.key })).status, 200)
  const failures = (await app.access.store.listAudit(200, null)).filter((entry) => entry.action === 'authenticate_failed')
  assert.equal(failures.length, 10, 'the counted failures are audited; refused ones are not, so a flood cannot fill the log')
})

test('the page sign-in: an HttpOnly SameSite=Strict cookie; cross-site changes with it are refused; sign-out and revocation end it', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const dana = await userWithKey('dana')
  assert.equal((await send(url, 'POST', '/v1/auth/login', {}, { api_key: 'cko_wrong' })).status, 401)
  const signedIn = await send(url, 'POST', '/v1/auth/login', {}, { api_key: dana.key })
  assert.equal(signedIn.status, 200)
  assert.deepEqual((await json(signedIn)).user.name, 'dana')
  const setCookie = signedIn.headers.get('set-cookie')!
  assert.match(setCookie, /^chat_ollama_session=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/)
  const cookie = setCookie.split(';')[0]!

  assert.equal((await json(await send(url, 'GET', '/v1/auth/me', { cookie }))).user.name, 'dana')
  const before = (await json(await send(url, 'GET', '/v1/sessions', { cookie }))).sessions.length
  const crossSite: Array<Record<string, string>> = [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, { origin: 'https://evil.example' }, {}]
  for (const site of crossSite) {
    const refused = await send(url, 'POST', '/v1/sessions', { cookie, ...site }, { title: 'planted' })
    assert.equal(refused.status, 403, JSON.stringify(site))
  }
  assert.equal((await json(await send(url, 'GET', '/v1/sessions', { cookie }))).sessions.length, before, 'nothing changed')
  assert.equal((await send(url, 'POST', '/v1/sessions', { cookie, 'sec-fetch-site': 'same-origin' }, { title: 'mine' })).status, 201)
  assert.equal((await send(url, 'POST', '/v1/sessions', { cookie, origin: url }, { title: 'mine too' })).status, 201)

  const signedOut = await send(url, 'POST', '/v1/auth/logout', { cookie, 'sec-fetch-site': 'same-origin' })
  assert.equal(signedOut.status, 204)
  assert.match(signedOut.headers.get('set-cookie')!, /Max-Age=0/)
  assert.equal((await send(url, 'GET', '/v1/sessions', { cookie })).status, 401, 'signed out: the cookie is dead on the server')

  const again = (await send(url, 'POST', '/v1/auth/login', {}, { api_key: dana.key })).headers.get('set-cookie')!.split(';')[0]!
  await app.access.store.revokeKey(dana.keyId)
  assert.equal((await send(url, 'GET', '/v1/sessions', { cookie: again })).status, 401, 'revoking the key ends its sign-ins')
  const actions = (await app.access.store.listAudit(100, null)).map((entry) => `${entry.action}:${entry.outcome}`)
  for (const expected of ['login:ok', 'login_failed:failed', 'logout:ok']) assert.ok(actions.includes(expected), expected)
})

test('the database file holds no API key and no sign-in token in clear', sqliteOnly('reads the database file\'s bytes; PostgreSQL keeps the same hashes (test/store-contract.test.ts)'), async (t) => {
  const { url, dbPath, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const erin = await userWithKey('erin')
  const cookie = (await send(url, 'POST', '/v1/auth/login', {}, { api_key: erin.key })).headers.get('set-cookie')!.split(';')[0]!
  const token = cookie.split('=')[1]!
  await send(url, 'GET', '/v1/sessions', erin.headers)
  const folder = dirname(dbPath)
  const files = readdirSync(folder).map((file) => readFileSync(join(folder, file)))
  assert.ok(files.length >= 1)
  for (const secret of [erin.key, erin.key.slice(4), token]) {
    assert.ok(files.every((bytes) => !bytes.includes(secret)), 'a secret is in the database files')
  }
})

test('RATE_LIMIT per user: RateLimit headers on every answer, then 429 with Retry-After, audited once', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '3/min' })
  const fay = await userWithKey('fay')
  const gus = await userWithKey('gus')
  for (let index = 0; index < 3; index++) {
    const response = await send(url, 'GET', '/v1/sessions', fay.headers)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('ratelimit-policy'), '"per-user";q=3;w=60')
    assert.match(response.headers.get('ratelimit')!, new RegExp(`^"per-user";r=${2 - index};t=\\d+$`))
  }
  for (let index = 0; index < 2; index++) {
    const limited = await send(url, 'GET', '/v1/sessions', fay.headers)
    assert.equal(limited.status, 429)
    assert.equal((await json(limited)).type, 'https://api.chat-ollama.com/errors/rate_limit')
    assert.ok(Number(limited.headers.get('retry-after')) >= 1)
    assert.match(limited.headers.get('ratelimit')!, /^"per-user";r=0;t=\d+$/)
  }
  assert.equal((await send(url, 'GET', '/v1/sessions', gus.headers)).status, 200, 'another user has a bucket of their own')
  const audited = (await app.access.store.listAudit(100, null)).filter((entry) => entry.action === 'rate_limited')
  assert.equal(audited.length, 1)
  assert.equal(audited[0]!.user_id, fay.user.id)
})

test('admin routes: 403 for a user; an admin manages users and keys over HTTP, and reading another user\'s chats is audited', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const root = await userWithKey('root', 'admin')
  const hal = await userWithKey('hal')
  for (const { fn, method, path } of everyRoute.filter((route) => route.fn.access === 'admin')) {
    const response = await send(url, method, path, hal.headers, method === 'POST' ? {} : undefined)
    assert.equal(response.status, 403, `${fn.name} for a user`)
  }
  const created = await send(url, 'POST', '/v1/admin/users', root.headers, { name: 'ivy' })
  assert.equal(created.status, 201)
  const users = await json(await send(url, 'GET', '/v1/admin/users', root.headers))
  assert.deepEqual(users.users.map((user: any) => [user.name, user.role]), [['root', 'admin'], ['hal', 'user'], ['ivy', 'user']])
  assert.equal((await send(url, 'POST', '/v1/admin/users', root.headers, { name: 'ivy' })).status, 409)
  const key = await json(await send(url, 'POST', '/v1/admin/keys', root.headers, { user: 'ivy', name: 'phone', expires_in: '24h' }))
  assert.match(key.key, /^cko_/)
  const ivy = { authorization: `Bearer ${key.key}` }
  assert.equal((await send(url, 'POST', '/v1/sessions', ivy, { title: 'ivy private' })).status, 201)
  const keys = await json(await send(url, 'GET', '/v1/admin/keys?user=ivy', root.headers))
  assert.deepEqual(keys.keys.map((entry: any) => [entry.id, entry.name, 'key' in entry]), [[key.id, 'phone', false]])

  const read = await json(await send(url, 'GET', '/v1/admin/users/ivy/sessions', root.headers))
  assert.deepEqual(read.sessions.map((session: any) => session.title), ['ivy private'])
  assert.equal((await json(await send(url, 'GET', '/v1/sessions', root.headers))).sessions.length, 0, 'the admin\'s own list is their own')
  assert.equal((await send(url, 'DELETE', `/v1/admin/keys/${key.id}`, root.headers)).status, 200)
  assert.equal((await send(url, 'GET', '/v1/sessions', ivy)).status, 401)
  const audit = await json(await send(url, 'GET', '/v1/admin/audit?limit=50', root.headers))
  const actions = audit.entries.map((entry: any) => `${entry.action} ${entry.target}`)
  // Minting a key for someone else gives the admin their chats: audited as a read of them, naming the user.
  for (const expected of ['user_add user:ivy', `key_create key:${key.id} user:ivy`, 'admin_read keys_for:ivy', 'admin_read sessions_of:ivy', `key_revoke key:${key.id}`]) {
    assert.ok(actions.includes(expected), expected)
  }
  assert.ok(audit.entries.every((entry: any) => entry.user_id === root.user.id || entry.action !== 'admin_read'))
  assert.doesNotMatch(JSON.stringify(audit), /cko_/, 'no key material in the audit log')
  assert.equal((await app.access.store.listAudit(500, null)).filter((entry) => entry.action === 'admin_read').length, 2, 'the key minted for ivy, and the read of her sessions')
})

test('credentials inside OLLAMA_HOST never reach the log', async (t) => {
  const server = await spawnServer(t, SERVER_FROM_SOURCE, { env: { OLLAMA_HOST: 'http://ollama-user:s3cr3t-pass@127.0.0.1:9', DB_PATH: ':memory:' } })
  const listening = await server.logged('listening')
  assert.deepEqual(listening.ollama_hosts, ['http://ollama-user:***@127.0.0.1:9'])
  await fetch(`${server.url}/health`)
  await fetch(`${server.url}/v1/models`)
  server.child.kill('SIGTERM')
  await server.exited
  assert.ok(server.lines.length > 2)
  assert.ok(server.lines.every((line) => !line.includes('s3cr3t-pass')))
  assert.throws(() => loadConfig({ OLLAMA_HOST: 'ftp://u:s3cr3t-pass@x' }), (error: Error) => !error.message.includes('s3cr3t-pass'))
})

test('sign-out with both the cookie and a key ends the cookie\'s sign-in too', async (t) => {
  const { url, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const jo = await userWithKey('jo')
  const cookie = (await send(url, 'POST', '/v1/auth/login', {}, { api_key: jo.key })).headers.get('set-cookie')!.split(';')[0]!
  assert.equal((await send(url, 'POST', '/v1/auth/logout', { cookie, ...jo.headers })).status, 204)
  assert.equal((await send(url, 'GET', '/v1/sessions', { cookie })).status, 401)
})

test('key names with control characters and expiries past 10 years are 400 and store nothing; the CLI prints what is stored escaped', async (t) => {
  const { url, app, userWithKey, storeVariables } = await authServer(t, null, { RATE_LIMIT: '0' })
  const root = await userWithKey('root', 'admin')
  await userWithKey('kim')
  const before = (await app.access.store.listKeys()).length
  for (const body of [{ user: 'kim', name: 'evil\u001b[2J' }, { user: 'kim', name: 'bidi\u202egnp.exe' }, { user: 'kim', expires_in: '9999999999h' }, { user: 'kim', expires_in: '87601h' }]) {
    const refused = await send(url, 'POST', '/v1/admin/keys', root.headers, body)
    assert.equal(refused.status, 400, JSON.stringify(body))
    assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/validation')
  }
  assert.equal((await app.access.store.listKeys()).length, before)
  assert.equal((await send(url, 'POST', '/v1/admin/keys', root.headers, { user: 'kim', expires_in: '87600h' })).status, 201)

  // A name stored before names were checked is printed with its control characters escaped.
  await storedRows(app, "UPDATE api_keys SET name = ? WHERE user_id = (SELECT id FROM users WHERE name = 'kim')", 'old\u001b[31mred')
  const lines: string[] = []
  assert.equal(await runAdmin(['key', 'list', 'kim'], storeVariables, (line) => lines.push(line), () => {}), 0)
  assert.ok(lines.every((line) => !line.includes('\u001b')), 'no raw escape reaches the terminal')
  assert.match(lines.join('\n'), /old\\u001b\[31mred/)
})

test('expired sign-ins are deleted, not kept for ever', async (t) => {
  const { url, app, userWithKey } = await authServer(t, null, { RATE_LIMIT: '0' })
  const lu = await userWithKey('lu')
  assert.equal((await send(url, 'POST', '/v1/auth/login', {}, { api_key: lu.key })).status, 200)
  const signIns = async () => Number((await storedRows(app, 'SELECT count(*) AS n FROM web_sessions'))[0]!.n)
  assert.equal(await signIns(), 1)
  // The next sign-in, 31 days later, finds the first one expired.
  await app.access.store.openWebSession((await app.access.store.authenticateKey(lu.key))!, Date.now() + WEB_SESSION_MS + 1000)
  assert.equal(await signIns(), 1)
})
