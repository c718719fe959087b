import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { startServer } from '../lib/server.ts'
import { fakeOllama, json, problemFor, readSse, recordingLogger, storeEnv, storedRows, testConfig, type Env } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'

/** A server with AUTH required (alice and bob, each with a key), its log recorded. */
async function sharingServer(t: TestContext, fake: FakeOllama, env: Env = {}) {
  const log = recordingLogger()
  const dbPath = join(mkdtempSync(join(tmpdir(), 'chat-ollama-shares-')), 'chat.db')
  const running = await startServer(testConfig({ OLLAMA_HOST: fake.hostPort, AUTH: 'required', RATE_LIMIT: '0', DB_PATH: dbPath, ...(await storeEnv()), ...env }), { log })
  t.after(() => running.shutdown())
  const headers: Record<string, Record<string, string>> = {}
  for (const name of ['alice', 'bob']) {
    await running.app.access.store.addUser(name, 'user')
    headers[name] = { authorization: `Bearer ${(await running.app.access.store.createKey(name)).key}`, 'content-type': 'application/json' }
  }
  const call = (who: string, method: string, path: string, body?: unknown) =>
    fetch(`${running.url}${path}`, { method, headers: headers[who]!, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const say = async (who: string, message: string, sessionId?: string) => {
    const { events } = await readSse(await call(who, 'POST', '/v1/chat', { message, ...(sessionId ? { session_id: sessionId } : {}) }))
    return events[0]!.data.session_id as string
  }
  return { ...running, log, call, say }
}

test('a shared chat: a read-only snapshot at an unguessable link, without sign-in; no script, not indexed; later messages not in it; revoked at once', async (t) => {
  const fake = await fakeOllama(t)
  const server = await sharingServer(t, fake, { SHARE_LINKS: 'on' })
  const sessionId = await server.say('alice', 'What is <b>bold</b>? <script>alert(1)</script><img src=x onerror=alert(2)>')
  await server.say('alice', 'And second?', sessionId)

  const created = await server.call('alice', 'POST', `/v1/sessions/${sessionId}/shares`)
  assert.equal(created.status, 201)
  const share = await json(created)
  assert.match(share.url, /^\/s\/[A-Za-z0-9_-]{43}$/)
  assert.equal(created.headers.get('location'), share.url)
  assert.deepEqual([share.session_id, share.message_count], [sessionId, 4])
  await server.say('alice', 'A later message, not shared', sessionId)

  // Read without any key, from outside.
  const page = await fetch(`${server.url}${share.url}`)
  assert.equal(page.status, 200)
  const html = await page.text()
  assert.match(page.headers.get('content-type')!, /^text\/html; charset=utf-8/)
  const policy = page.headers.get('content-security-policy')!
  assert.match(policy, /default-src 'none'/)
  assert.doesNotMatch(policy, /script-src|unsafe/)
  assert.equal(page.headers.get('x-robots-tag'), 'noindex, nofollow')
  assert.equal(page.headers.get('cache-control'), 'no-store')
  assert.match(html, /<meta name="robots" content="noindex, nofollow">/)
  assert.match(html, /What is &lt;b&gt;bold&lt;\/b&gt;\? &lt;script&gt;alert\(1\)&lt;\/script&gt;&lt;img src=x onerror=alert\(2\)&gt;/)
  assert.doesNotMatch(html, /<script|<img/i, "the chat's markup is text")
  assert.match(html, /You said: And second\?/)
  assert.doesNotMatch(html, /A later message/)
  assert.equal((html.match(/<li class=/g) ?? []).length, 4)

  // The token is in no log and not in the database in clear: only its SHA-256.
  const token = share.url.slice(3)
  assert.equal(JSON.stringify(server.log.entries).includes(token), false)
  assert.ok(server.log.entries.some((entry) => entry.fields.path === '/s/{token}'))
  const rows = await storedRows(server.app, 'SELECT token_hash FROM shares')
  assert.deepEqual(rows.map((row) => row.token_hash), [createHash('sha256').update(token).digest('hex')])

  // Listed for its owner (never with its token); revoked, the link is gone at once.
  const listed = await json(await server.call('alice', 'GET', `/v1/shares?session_id=${sessionId}`))
  assert.deepEqual(listed.shares.map((item: any) => [item.id, item.title, item.message_count]), [[share.id, share.title, 4]])
  assert.equal(JSON.stringify(listed).includes(token), false)
  assert.equal((await server.call('alice', 'DELETE', `/v1/shares/${share.id}`)).status, 204)
  const revoked = await fetch(`${server.url}${share.url}`)
  assert.equal(revoked.status, 404)
  assert.match(await revoked.text(), /No such shared chat/)
  assert.equal((await fetch(`${server.url}/s/${'A'.repeat(43)}`)).status, 404, 'a made-up token')
  assert.equal((await fetch(`${server.url}/s/short`)).status, 404)
})

test('another user can neither share, list nor revoke alice\'s chat and links (answered as missing ones); deleting the chat revokes its links', async (t) => {
  const fake = await fakeOllama(t)
  const server = await sharingServer(t, fake, { SHARE_LINKS: 'on' })
  const sessionId = await server.say('alice', 'private')
  const share = await json(await server.call('alice', 'POST', `/v1/sessions/${sessionId}/shares`))
  const missing = randomUUID()
  const theirs = await server.call('bob', 'POST', `/v1/sessions/${sessionId}/shares`)
  assert.equal(theirs.status, 404)
  assert.equal(await problemFor(theirs, sessionId), await problemFor(await server.call('bob', 'POST', `/v1/sessions/${missing}/shares`), missing))
  const revokeTheirs = await server.call('bob', 'DELETE', `/v1/shares/${share.id}`)
  assert.equal(revokeTheirs.status, 404)
  assert.equal(await problemFor(revokeTheirs, share.id), await problemFor(await server.call('bob', 'DELETE', `/v1/shares/${missing}`), missing))
  assert.deepEqual((await json(await server.call('bob', 'GET', '/v1/shares'))).shares, [])
  assert.equal((await fetch(`${server.url}${share.url}`)).status, 200, 'still shared')
  assert.equal((await server.call('alice', 'GET', '/v1/shares?session_id=nope')).status, 400)

  assert.equal((await server.call('alice', 'DELETE', `/v1/sessions/${sessionId}`)).status, 204)
  assert.equal((await fetch(`${server.url}${share.url}`)).status, 404)
  assert.deepEqual((await json(await server.call('alice', 'GET', '/v1/shares'))).shares, [])
})

test('SHARE_LINKS off (the default): nothing can be shared, and no link opens, even one made while it was on', async (t) => {
  const fake = await fakeOllama(t)
  const server = await sharingServer(t, fake)
  const sessionId = await server.say('alice', 'hello')
  const refused = await server.call('alice', 'POST', `/v1/sessions/${sessionId}/shares`)
  assert.equal(refused.status, 404)
  assert.match((await json(refused)).detail, /SHARE_LINKS=on/)
  assert.equal((await server.call('alice', 'GET', '/v1/shares')).status, 404)
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM shares'))[0].n), 0)

  // A link made before the switch went off stays closed while it is off.
  const token = 'B'.repeat(43)
  await server.app.database.shares.createShare({ ownerId: 'alice', sessionId, tokenHash: createHash('sha256').update(token).digest('hex'), title: 'hello', messages: [] })
  assert.equal((await fetch(`${server.url}/s/${token}`)).status, 404)
})
