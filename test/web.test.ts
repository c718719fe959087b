import assert from 'node:assert/strict'
import { test } from 'node:test'
import web from '../functions/web.ts'
import { json, testApp, toRequest } from './support/app.ts'

test('GET / serves the page with a strict Content-Security-Policy and an ETag', async (t) => {
  const app = await testApp(t, null)
  const page = await web.fetch(toRequest('GET /'), app)
  assert.equal(page.status, 200)
  assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
  const csp = page.headers.get('content-security-policy')!
  assert.match(csp, /default-src 'self'/)
  assert.match(csp, /script-src 'self'(;|$)/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  assert.equal(page.headers.get('cache-control'), 'no-cache')
  const html = await page.text()
  assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, 'no inline script')
  assert.doesNotMatch(html, /\sstyle=/, 'no inline style')
  const etag = page.headers.get('etag')!
  const again = await web.fetch(toRequest('GET /', undefined, { 'if-none-match': etag }), app)
  assert.equal(again.status, 304)
  assert.equal(await again.text(), '')
})

test('hashed assets have their content types and are cached for a year', async (t) => {
  const app = await testApp(t, null)
  const html = await (await web.fetch(toRequest('GET /'), app)).text()
  const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(html)![1]!
  const styles = /href="(\/assets\/styles-[A-Z0-9]+\.css)"/.exec(html)![1]!
  for (const [path, type] of [[script, 'text/javascript; charset=utf-8'], [styles, 'text/css; charset=utf-8']] as const) {
    const response = await web.fetch(toRequest(`GET ${path}`), app)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('content-type'), type)
    assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff')
    assert.ok((await response.text()).length > 100)
  }
  const head = await web.fetch(toRequest(`HEAD ${script}`), app)
  assert.equal(head.status, 200)
  assert.equal(await head.text(), '')
  const missing = await web.fetch(toRequest('GET /assets/app-NOPE.js'), app)
  assert.equal(missing.status, 404)
  assert.equal((await json(missing)).type, 'https://api.chat-ollama.com/errors/not_found')
})

test('GET /favicon.ico answers with the icon, so a page load logs no 404', async (t) => {
  const app = await testApp(t, null)
  const icon = await web.fetch(toRequest('GET /favicon.ico'), app)
  assert.equal(icon.status, 200)
  assert.equal(icon.headers.get('content-type'), 'image/svg+xml')
  assert.match(await icon.text(), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/)
  const html = await (await web.fetch(toRequest('GET /'), app)).text()
  assert.match(html, /<link rel="icon" href="\/favicon\.ico"/)
})
