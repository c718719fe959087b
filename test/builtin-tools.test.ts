/**
 * The built-in tools (docs/builtin-tools.md): web_search through each provider, fetch_url and its
 * address checks, run_python in its sandbox, all through POST /v1/chat with the fake Ollama calling
 * them on cue, under the same turn rules as MCP tools. On both backends (STORE=postgres runs it too).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import chat from '../functions/chat.ts'
import sessionMessages from '../functions/session-messages.ts'
import toolsList from '../functions/tools-list.ts'
import toolCallAnswer from '../functions/tool-call-answer.ts'
import sessionStream from '../functions/session-stream.ts'
import type { AppContext } from '../lib/context.ts'
import { loadConfig } from '../lib/shared/config.ts'
import { makePdf } from './support/documents.ts'
import { chatRequest, fakeOllama, json, readSse, recordingLogger, storedRows, testApp, toRequest, type SseEvent } from './support/app.ts'
import { ARTICLE_HTML, connectionCounter, startFakeWeb, type FakeWeb } from './support/fake-web.ts'

const BRAVE_KEY = 'brave-key-5f1c2e'
const TAVILY_KEY = 'tvly-key-93ad7b'

function builtinConfig(tools: Record<string, string>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-builtin-')), 'mcp.json')
  writeFileSync(path, JSON.stringify({ builtin: { tools } }))
  return path
}

async function setup(t: TestContext, tools: Record<string, string>, env: (web: FakeWeb) => Record<string, string> = () => ({}), pages = {}) {
  const fake = await fakeOllama(t)
  const web = await startFakeWeb(t, pages)
  const log = recordingLogger()
  const app = await testApp(t, fake, { MCP_CONFIG: builtinConfig(tools), ...env(web) }, log)
  t.after(() => app.tools.close())
  return { fake, web, app, log }
}

const ofType = (events: SseEvent[], type: string) => events.filter((event) => event.data.type === type).map((event) => event.data)
const messagesOf = async (app: AppContext, sessionId: string) =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
/** A cue for the fake model: it calls `name` with `args`. */
const cue = (name: string, args: Record<string, unknown>) => `[[call ${name} ${JSON.stringify(args)}]]`

async function chatWith(app: AppContext, message: string, tools: true | string[] = true) {
  const { events } = await readSse(await chat.fetch(chatRequest({ message, model: 'qwen3:8b', tools }), app))
  // In the order of the calls (they run 4 at once and end in any order).
  const results = ofType(events, 'tool_call').map((call) => ofType(events, 'tool_result').find((result) => result.call_id === call.call_id)).filter(Boolean)
  return { events, results, sessionId: events[0]!.data.session_id as string }
}

test('web_search through SearXNG: numbered results go to the model, and the reply lists them as its sources, stored', async (t) => {
  const { fake, web, app } = await setup(t, { web_search: 'auto' }, (web) => ({ WEB_SEARCH_URL: web.url }))
  const listing = await json(await toolsList.fetch(toRequest('GET /v1/tools'), app))
  assert.deepEqual(listing.servers.map((server: any) => [server.name, server.transport, server.status, server.tools.map((tool: any) => [tool.name, tool.policy])]), [['builtin', 'builtin', 'ok', [['web_search', 'auto']]]])

  const { events, results, sessionId } = await chatWith(app, `Who runs models? ${cue('web_search', { query: 'ollama models', max_results: 2 })}`)
  assert.deepEqual(web.searches.map((search) => [search.provider, search.query]), [['searxng', 'ollama models']])
  assert.equal(results.length, 1)
  assert.equal(results[0].ok, true)
  assert.match(results[0].content, /^Web results for "ollama models" \(cite what you use by its number in brackets, such as \[1\]\)\n\n\[1\] Ollama runs models\nURL: https:\/\/ollama\.com\/\nGet up and running with large language models & more\.\n\n\[2\] SQLite\n/)
  assert.doesNotMatch(results[0].content, /ftp:|\[3\]/, 'max_results, and http(s) results only')
  const sources = ofType(events, 'sources')
  assert.equal(sources.length, 1)
  assert.deepEqual(sources[0].sources, [
    { n: 1, url: 'https://ollama.com/', title: 'Ollama runs models', snippet: 'Get up and running with large language models & more.' },
    { n: 2, url: 'https://sqlite.org/', title: 'SQLite', snippet: 'SQLite is a C library.' },
  ])
  // The model read the results as the tool's answer.
  const sent = fake.chatRequests()[1]!.body.messages.at(-1)
  assert.deepEqual([sent.role, sent.tool_name], ['tool', 'web_search'])
  assert.match(sent.content, /\[2\] SQLite/)
  const listed = await messagesOf(app, sessionId)
  assert.deepEqual(listed.at(-1).sources, sources[0].sources, 'stored with the reply')
  assert.equal(ofType(events, 'done').length, 1)
})

test('Brave and Tavily answer web_search with their keys, which never reach a log, a result or the database', async (t) => {
  for (const provider of ['brave', 'tavily'] as const) {
    await t.test(provider, async (t) => {
      const { web, app, log } = await setup(t, { web_search: 'auto' }, (web) => ({ WEB_SEARCH_PROVIDER: provider, WEB_SEARCH_URL: web.url, BRAVE_API_KEY: BRAVE_KEY, TAVILY_API_KEY: TAVILY_KEY }))
      const { results, sessionId } = await chatWith(app, cue('web_search', { query: 'sqlite' }))
      assert.equal(web.searches.length, 1)
      const [search] = web.searches
      assert.equal(search!.provider, provider)
      assert.equal(search!.query, 'sqlite')
      if (provider === 'brave') assert.equal(search!.headers['x-subscription-token'], BRAVE_KEY)
      else assert.equal(search!.headers.authorization, `Bearer ${TAVILY_KEY}`)
      assert.equal(search!.count, 5, 'WEB_SEARCH_MAX_RESULTS by default')
      assert.match(results[0].content, /\[3\] PostgreSQL\nURL: https:\/\/www\.postgresql\.org\//)
      // A refused key is said as such, without the key.
      web.searchStatus = 401
      const refused = await chatWith(app, cue('web_search', { query: 'again' }))
      assert.equal(refused.results[0].ok, false)
      assert.match(refused.results[0].content, /answered HTTP 401 \(check its API key\)/)
      const everything = JSON.stringify([log.entries, await messagesOf(app, sessionId), await messagesOf(app, refused.sessionId), await storedRows(app, 'SELECT * FROM messages')])
      assert.ok(!everything.includes(BRAVE_KEY) && !everything.includes(TAVILY_KEY))
    })
  }
})

test('web_search is refused at start-up without its provider\'s address or key, and MCP_CONFIG names only known built-in tools', () => {
  const config = (tools: Record<string, string>) => ({ MCP_CONFIG: builtinConfig(tools) })
  assert.throws(() => loadConfig(config({ web_search: 'auto' })), /WEB_SEARCH_PROVIDER=searxng needs WEB_SEARCH_URL/)
  assert.throws(() => loadConfig({ ...config({ web_search: 'ask' }), WEB_SEARCH_PROVIDER: 'brave' }), /needs BRAVE_API_KEY/)
  assert.throws(() => loadConfig(config({ shell: 'auto' })), /builtin\.tools.*must be one of web_search, fetch_url, run_python/)
  assert.equal(loadConfig(config({ web_search: 'deny', fetch_url: 'ask' })).builtinTools.size, 1, 'deny turns a tool off')
  assert.throws(() => loadConfig({ MCP_CONFIG: (() => {
    const path = builtinConfig({})
    writeFileSync(path, JSON.stringify({ mcpServers: { builtin: { url: 'https://mcp.example' } } }))
    return path
  })() }), /mcpServers\.builtin: the name is taken/)
})

test('fetch_url refuses loopback, private and metadata addresses in every spelling, and connects to none of them', async (t) => {
  const counter = await connectionCounter(t)
  const { app } = await setup(t, { fetch_url: 'auto' })
  const port = counter.port
  const refused = [
    `http://127.0.0.1:${port}/`,
    `http://localhost:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://2130706433:${port}/`,
    'http://169.254.169.254/latest/meta-data/',
    `http://0x7f.1:${port}/`,
    'http://10.1.2.3/',
    'http://[fd00:ec2::254]/',
  ]
  const { results } = await chatWith(app, refused.map((url) => cue('fetch_url', { url })).join(' '))
  assert.equal(results.length, refused.length)
  for (const [index, result] of results.entries()) {
    assert.equal(result.ok, false, refused[index])
    assert.match(result.content, /is not a public address/, refused[index])
  }
  assert.match(results[1].content, /^localhost \((127\.0\.0\.1|::1)\) is not a public address/)
  assert.match(results[4].content, /^127\.0\.0\.1 is not a public address/, 'a decimal address is read as the address it is')
  const odd = await chatWith(app, [cue('fetch_url', { url: 'file:///etc/passwd' }), cue('fetch_url', { url: `http://user:pw@127.0.0.1:${port}/` }), cue('fetch_url', { url: 'not a url' })].join(' '))
  assert.deepEqual(odd.results.map((result) => result.content), ['file: URLs are not fetched: http and https only.', 'URLs with credentials in them are not fetched.', '"not a url" is not a URL.'])
  assert.equal(counter.connections(), 0, 'no connection was made')
})

test('fetch_url reads a page from a host FETCH_ALLOWED_HOSTS names: its main text as Markdown, no script run; a redirect to a refused host is refused', async (t) => {
  const counter = await connectionCounter(t)
  const pages = {
    '/article': { type: 'text/html; charset=utf-8', body: ARTICLE_HTML, gzip: true },
    '/notes.txt': { type: 'text/plain', body: 'plain notes' },
    '/paper.pdf': { type: 'application/pdf', body: makePdf([['Lighthouse keeping in the age of steam']]) },
    '/image.png': { type: 'image/png', body: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) },
    '/big.txt': { type: 'text/plain', body: 'x'.repeat(5000) },
  }
  const { app, web } = await setup(t, { fetch_url: 'auto' }, () => ({ FETCH_ALLOWED_HOSTS: '127.0.0.1', FETCH_MAX_BYTES: '2KiB' }), pages)
  const { events, results, sessionId } = await chatWith(app, [
    cue('fetch_url', { url: `${web.url}/redirect?to=/article` }),
    cue('fetch_url', { url: `${web.url}/redirect?to=${encodeURIComponent(`http://localhost:${counter.port}/secret`)}` }),
    cue('fetch_url', { url: `${web.url}/image.png` }),
    cue('fetch_url', { url: `${web.url}/paper.pdf` }),
  ].join(' '))
  const [article, redirected, image, pdf] = results
  assert.equal(article.ok, true)
  assert.match(article.content, new RegExp(`^The page \\(cite what you use by its number in brackets, such as \\[1\\]\\)\\n\\n\\[1\\] The Tide Tables\\nURL: ${web.url}/article\\n`), 'the final URL')
  assert.match(article.content, /marmalade-tide/)
  assert.match(article.content, /\* First item\n\* Second item/, 'as Markdown')
  assert.doesNotMatch(article.content, /hacked|beacon|color:red|Copyright nobody|About/, 'no script, style or page furniture')
  assert.ok(!web.fetched.includes('/beacon'), 'no script ran')
  assert.equal(redirected.ok, false)
  assert.match(redirected.content, /^localhost \(.*\) is not a public address/)
  assert.equal(counter.connections(), 0)
  assert.equal(image.ok, false)
  assert.match(image.content, /is image\/png, which fetch_url does not read/)
  assert.equal(pdf.ok, true)
  assert.match(pdf.content, /Lighthouse keeping in the age of steam/)
  // Both pages read are the reply's sources, numbered in the order they came.
  const sources = ofType(events, 'sources').at(-1).sources
  assert.deepEqual(sources.map((source: any) => [source.url, source.title]).sort(), [[`${web.url}/article`, 'The Tide Tables'], [`${web.url}/paper.pdf`, '127.0.0.1']])
  assert.deepEqual((await messagesOf(app, sessionId)).at(-1).sources, sources)

  const more = await chatWith(app, [cue('fetch_url', { url: `${web.url}/big.txt` }), cue('fetch_url', { url: `${web.url}/loop` }), cue('fetch_url', { url: `${web.url}/missing` })].join(' '))
  assert.match(more.results[0].content, /x{2048}\n\n\[…the page is longer than FETCH_MAX_BYTES; only its start was read\]/)
  assert.doesNotMatch(more.results[0].content, /x{2049}/)
  assert.match(more.results[1].content, /redirects more than 5 times/)
  assert.match(more.results[2].content, /answered HTTP 404/)
  assert.equal(web.fetched.filter((path) => path === '/loop').length, 6, 'the first request and 5 redirects')
})

test('a built-in tool with the ask policy waits for its user like any tool, and runs once approved', async (t) => {
  const { app, web } = await setup(t, { fetch_url: 'ask' }, () => ({ FETCH_ALLOWED_HOSTS: '127.0.0.1' }), { '/notes.txt': { type: 'text/plain', body: 'the approved notes' } })
  const { events, sessionId } = await chatWith(app, cue('fetch_url', { url: `${web.url}/notes.txt` }))
  const [approval] = ofType(events, 'approval_required')
  assert.equal(approval.name, 'fetch_url')
  assert.deepEqual(web.fetched, [], 'not fetched before the answer')
  const answer = await toolCallAnswer.fetch(toRequest(`POST /v1/sessions/${sessionId}/tool-calls/${approval.call_id}`, { approve: true }), app)
  assert.equal(answer.status, 200)
  const resumed = await readSse(await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`, undefined, { 'last-event-id': events.at(-1)!.id! }), app))
  const result = ofType(resumed.events, 'tool_result')[0]
  assert.equal(result.ok, true)
  assert.match(result.content, /the approved notes/)
  assert.deepEqual(web.fetched, ['/notes.txt'])
  const reply = (await messagesOf(app, sessionId)).at(-1)
  assert.deepEqual(reply.sources.map((source: any) => source.url), [`${web.url}/notes.txt`])
})

test('run_python runs a program and answers what it printed and its last value', async (t) => {
  const { app } = await setup(t, { run_python: 'auto' })
  const { results } = await chatWith(app, cue('run_python', { code: 'import math\nprint("sum", sum(range(10)))\nmath.factorial(20)' }))
  assert.equal(results[0].ok, true)
  assert.equal(results[0].content, 'stdout:\nsum 45\n\nvalue: 2432902008176640000')
  const failed = await chatWith(app, cue('run_python', { code: 'x = 1\nraise ValueError("no good")' }))
  assert.equal(failed.results[0].ok, false)
  assert.match(failed.results[0].content, /error:\n[\s\S]*ValueError: no good$/)
  // Each call starts clean: nothing of the earlier program is left.
  const fresh = await chatWith(app, cue('run_python', { code: 'print("x" in globals())\nopen("/tmp/left", "w").write("1")' }))
  assert.match(fresh.results[0].content, /^stdout:\nFalse/)
  const after = await chatWith(app, cue('run_python', { code: 'import os\nos.path.exists("/tmp/left")' }))
  assert.equal(after.results[0].content, 'value: False')
})

test('run_python has no network and no host files: sockets, urllib, pyfetch, the js bridge and host mounts all fail, and nothing connects', async (t) => {
  const counter = await connectionCounter(t)
  const { app } = await setup(t, { run_python: 'auto' })
  const code = [
    'import socket, urllib.request, os',
    'seen = {}',
    'def attempt(name, fn):',
    '    try:',
    '        seen[name] = repr(fn())[:60]',
    '    except BaseException as error:',
    '        seen[name] = "refused " + type(error).__name__',
    `attempt("socket", lambda: socket.create_connection(("127.0.0.1", ${counter.port}), timeout=2))`,
    `attempt("urllib", lambda: urllib.request.urlopen("http://127.0.0.1:${counter.port}/", timeout=2).read())`,
    'attempt("file", lambda: open("/etc/passwd").read())',
    'attempt("listdir", lambda: sorted(os.listdir("/")))',
    'import js',
    'attempt("process", lambda: js.process)',
    'import pyodide_js',
    'attempt("mount", lambda: pyodide_js.mountNodeFS("/host", "/etc"))',
    'attempt("nodefs", lambda: pyodide_js.FS.filesystems.NODEFS)',
    // Emscripten's own NODEFS, reached past the API: mounted, it still reads nothing.
    'from pyodide.ffi import create_proxy',
    'class Root:',
    '    root = "/etc"',
    'os.mkdir("/host")',
    'attempt("module_mount", lambda: (pyodide_js._module.FS.mount(pyodide_js._module.NODEFS, create_proxy(Root()), "/host"), os.listdir("/host")))',
    'attempt("constructor", lambda: pyodide_js.runPython.constructor("return process")())',
    'from pyodide.code import run_js',
    'attempt("run_js", lambda: run_js("process"))',
    'try:',
    '    from pyodide.http import pyfetch',
    `    await pyfetch("http://127.0.0.1:${counter.port}/")`,
    '    seen["pyfetch"] = "fetched"',
    'except BaseException as error:',
    '    seen["pyfetch"] = "refused " + type(error).__name__',
    'import json',
    'print(json.dumps(seen))',
  ].join('\n')
  const { results } = await chatWith(app, cue('run_python', { code }))
  const seen = JSON.parse(/stdout:\n(.*)/.exec(results[0].content)![1]!) as Record<string, string>
  for (const [name, outcome] of Object.entries(seen)) {
    if (name === 'listdir') assert.doesNotMatch(outcome, /etc|usr|work|root/, 'only the in-memory file system')
    else assert.match(outcome, /^refused /, `${name}: ${outcome}`)
  }
  assert.equal(Object.keys(seen).length, 11)
  assert.equal(counter.connections(), 0, 'nothing connected')
})

test('run_python is cut: a loop that never ends at TOOL_TIMEOUT, a program that allocates without end at PYTHON_MEMORY', async (t) => {
  const { app } = await setup(t, { run_python: 'auto' }, () => ({ TOOL_TIMEOUT: '4s', PYTHON_MEMORY: '96MiB' }))
  // One call at a time: each takes the interpreter waiting in the pool (PYTHON_POOL_SIZE=1).
  const memory = await chatWith(app, cue('run_python', { code: 'chunks = []\nwhile True: chunks.append(bytearray(8 * 1024 * 1024))' }))
  assert.equal(memory.results[0].ok, false)
  assert.match(memory.results[0].content, /MemoryError/)
  const loop = await chatWith(app, cue('run_python', { code: 'while True: pass' }))
  assert.equal(loop.results[0].ok, false)
  assert.match(loop.results[0].content, /did not answer within 4s \(TOOL_TIMEOUT\); the call was cancelled/)
  // The pool goes on: a next program runs.
  const next = await chatWith(app, cue('run_python', { code: '6 * 7' }))
  assert.equal(next.results[0].content, 'value: 42')
})
