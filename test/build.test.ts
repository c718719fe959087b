import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import postgres from 'postgres'
import { postgresCluster } from './support/postgres.ts'
import { fakeOllama, json } from './support/app.ts'
import { dataUrl, largeJpeg, pngFile } from './support/images.ts'
import { ARTICLE_HTML, startFakeWeb } from './support/fake-web.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'
import { startOtlpReceiver } from './support/otlp-receiver.ts'
import { PROJECT_ROOT, spawnServer } from './support/process.ts'

const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')
const stages = dockerfile.split(/^FROM /m).slice(1)
const runtimeStage = stages.at(-1)!

const buildStage = stages[0]!
const depsStage = stages.find((stage) => stage.startsWith('node:24-alpine AS deps'))!

const ABSENT = '0b6e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4'
const problemOf = (kind: string) => (type: string, body: string) => {
  assert.equal(type, 'application/problem+json')
  assert.equal(JSON.parse(body).type, `https://api.chat-ollama.com/errors/${kind}`)
}
const jsonBody = (check: (body: any) => void) => (type: string, body: string) => {
  assert.match(type, /^application\/json/)
  check(JSON.parse(body))
}

/** What each bundle, alone in a process with no Ollama reachable, must answer. */
const BUNDLE_CHECKS: Record<string, { request: [string, string, unknown?]; status: number; check: (type: string, body: string) => void }> = {
  health: { request: ['GET', '/health'], status: 200, check: jsonBody((body) => assert.deepEqual([body.status, body.services], ['degraded', { database: 'healthy', ollama: 'unhealthy' }])) },
  chat: { request: ['POST', '/v1/chat', { message: 'hello' }], status: 503, check: problemOf('ollama') },
  models: { request: ['GET', '/v1/models'], status: 503, check: jsonBody((body) => assert.equal(body.error.code, 'ollama')) },
  'models-get': { request: ['GET', '/v1/models/llama3.2'], status: 503, check: jsonBody((body) => assert.equal(body.error.code, 'ollama')) },
  'sessions-list': { request: ['GET', '/v1/sessions'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { sessions: [], next_cursor: null })) },
  'folders-list': { request: ['GET', '/v1/folders'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { folders: [] })) },
  'prompts-list': { request: ['GET', '/v1/prompts'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { prompts: [] })) },
  'prompts-create': { request: ['POST', '/v1/prompts', { title: 'Summarise', content: 'Summarise this:' }], status: 201, check: jsonBody((body) => assert.equal(body.title, 'Summarise')) },
  'prompt-update': { request: ['PATCH', `/v1/prompts/${ABSENT}`, { title: 'x' }], status: 404, check: problemOf('not_found') },
  'prompt-delete': { request: ['DELETE', `/v1/prompts/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'share-create': { request: ['POST', `/v1/sessions/${ABSENT}/shares`], status: 404, check: problemOf('not_found') },
  'shares-list': { request: ['GET', '/v1/shares'], status: 404, check: problemOf('not_found') },
  'share-delete': { request: ['DELETE', `/v1/shares/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'shared-chat': { request: ['GET', `/s/${'a'.repeat(43)}`], status: 404, check: (type, body) => { assert.match(type, /^text\/html/); assert.match(body, /No such shared chat/) } },
  'sessions-create': { request: ['POST', '/v1/sessions', { title: 'From a bundle' }], status: 201, check: jsonBody((body) => assert.equal(body.title, 'From a bundle')) },
  'session-get': { request: ['GET', `/v1/sessions/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'session-update': { request: ['PATCH', `/v1/sessions/${ABSENT}`, { title: 'x' }], status: 404, check: problemOf('not_found') },
  'session-delete': { request: ['DELETE', `/v1/sessions/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'message-update': { request: ['PATCH', `/v1/sessions/${ABSENT}/messages/${ABSENT}`, { rating: 'up' }], status: 404, check: problemOf('not_found') },
  'session-messages': { request: ['GET', `/v1/sessions/${ABSENT}/messages`], status: 404, check: problemOf('not_found') },
  'session-stream': { request: ['GET', `/v1/sessions/${ABSENT}/stream`], status: 404, check: problemOf('not_found') },
  'session-cancel': { request: ['POST', `/v1/sessions/${ABSENT}/cancel`], status: 404, check: problemOf('not_found') },
  'session-regenerate': { request: ['POST', `/v1/sessions/${ABSENT}/messages/${ABSENT}/regenerate`], status: 404, check: problemOf('not_found') },
  'session-current': { request: ['PUT', `/v1/sessions/${ABSENT}/current`, { message_id: ABSENT }], status: 404, check: problemOf('not_found') },
  'session-export': { request: ['GET', `/v1/sessions/${ABSENT}/export`], status: 404, check: problemOf('not_found') },
  'attachment-get': { request: ['GET', `/v1/attachments/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'tools-list': { request: ['GET', '/v1/tools'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { servers: [] })) },
  'tool-call-answer': { request: ['POST', `/v1/sessions/${ABSENT}/tool-calls/call_${'0'.repeat(32)}`, { approve: true }], status: 404, check: problemOf('not_found') },
  'tool-input-answer': { request: ['POST', `/v1/sessions/${ABSENT}/tool-calls/call_${'0'.repeat(32)}/input`, { action: 'decline' }], status: 404, check: problemOf('not_found') },
  export: { request: ['GET', '/v1/export'], status: 200, check: (type, body) => assert.deepEqual([type, body], ['application/x-ndjson; charset=utf-8', '']) },
  import: { request: ['POST', '/v1/import', []], status: 200, check: jsonBody((body) => assert.deepEqual(body, { imported: [], updated: [], skipped: [] })) },
  search: { request: ['GET', '/v1/search?q=caf%C3%A9'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { results: [], next_cursor: null })) },
  'auth-login': { request: ['POST', '/v1/auth/login', { api_key: 'cko_not-a-key' }], status: 401, check: problemOf('unauthorized') },
  'auth-logout': { request: ['POST', '/v1/auth/logout'], status: 204, check: (_type, body) => assert.equal(body, '') },
  'auth-me': { request: ['GET', '/v1/auth/me'], status: 200, check: jsonBody((body) => assert.deepEqual([body.auth, body.user.name], ['off', 'local'])) },
  'admin-users-list': { request: ['GET', '/v1/admin/users'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { users: [] })) },
  'admin-users-create': { request: ['POST', '/v1/admin/users', { name: 'ann' }], status: 201, check: jsonBody((body) => assert.equal(body.name, 'ann')) },
  'admin-keys-list': { request: ['GET', '/v1/admin/keys'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { keys: [] })) },
  'admin-keys-create': { request: ['POST', '/v1/admin/keys', { user: 'nobody' }], status: 404, check: problemOf('not_found') },
  'admin-keys-revoke': { request: ['DELETE', '/v1/admin/keys/key_nothing'], status: 404, check: problemOf('not_found') },
  'admin-user-sessions': { request: ['GET', '/v1/admin/users/nobody/sessions'], status: 404, check: problemOf('not_found') },
  'admin-mcp-sign-in': { request: ['POST', '/v1/admin/mcp/nowhere/sign-in'], status: 404, check: problemOf('not_found') },
  'admin-mcp-sign-out': { request: ['DELETE', '/v1/admin/mcp/nowhere/sign-in'], status: 404, check: problemOf('not_found') },
  'mcp-oauth-callback': { request: ['GET', `/v1/mcp/oauth/callback?code=x&state=${'a'.repeat(43)}`], status: 400, check: (type, body) => { assert.match(type, /^text\/html/); assert.match(body, /was already used, or ran out/) } },
  'admin-audit': { request: ['GET', '/v1/admin/audit'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { entries: [], next_before: null })) },
  'openai-embeddings': { request: ['POST', '/v1/embeddings', { model: 'nomic-embed-text', input: 'hi' }], status: 503, check: jsonBody((body) => assert.equal(body.error.type, 'api_error')) },
  'files-create': { request: ['POST', '/v1/files', { file: 'not multipart' }], status: 415, check: jsonBody((body) => assert.equal(body.error.code, 'unsupported_media_type')) },
  'files-list': { request: ['GET', '/v1/files'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { object: 'list', data: [], has_more: false })) },
  'files-get': { request: ['GET', `/v1/files/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'files-content': { request: ['GET', `/v1/files/${ABSENT}/content`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'files-delete': { request: ['DELETE', `/v1/files/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'collections-create': { request: ['POST', '/v1/collections', { name: 'From a bundle' }], status: 201, check: jsonBody((body) => assert.deepEqual([body.name, body.file_count], ['From a bundle', 0])) },
  'collections-list': { request: ['GET', '/v1/collections'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { collections: [] })) },
  'collection-get': { request: ['GET', `/v1/collections/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'collection-update': { request: ['PATCH', `/v1/collections/${ABSENT}`, { name: 'x' }], status: 404, check: problemOf('not_found') },
  'collection-delete': { request: ['DELETE', `/v1/collections/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'collection-files-add': { request: ['POST', `/v1/collections/${ABSENT}/files`, { file_id: ABSENT }], status: 404, check: problemOf('not_found') },
  'collection-files-remove': { request: ['DELETE', `/v1/collections/${ABSENT}/files/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'collection-search': { request: ['GET', `/v1/collections/${ABSENT}/search?q=roses`], status: 404, check: problemOf('not_found') },
  'vector-stores-create': { request: ['POST', '/v1/vector_stores', { name: 'From a bundle' }], status: 200, check: jsonBody((body) => assert.deepEqual([body.object, body.name, body.file_counts.total], ['vector_store', 'From a bundle', 0])) },
  'vector-stores-list': { request: ['GET', '/v1/vector_stores'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { object: 'list', data: [], has_more: false })) },
  'vector-store-get': { request: ['GET', `/v1/vector_stores/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-delete': { request: ['DELETE', `/v1/vector_stores/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-files-create': { request: ['POST', `/v1/vector_stores/${ABSENT}/files`, { file_id: ABSENT }], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-files-list': { request: ['GET', `/v1/vector_stores/${ABSENT}/files`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-file-get': { request: ['GET', `/v1/vector_stores/${ABSENT}/files/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-file-delete': { request: ['DELETE', `/v1/vector_stores/${ABSENT}/files/${ABSENT}`], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'vector-store-search': { request: ['POST', `/v1/vector_stores/${ABSENT}/search`, { query: 'roses' }], status: 404, check: jsonBody((body) => assert.equal(body.error.code, 'not_found')) },
  'openai-chat-completions': { request: ['POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }], status: 503, check: jsonBody((body) => assert.equal(body.error.type, 'api_error')) },
  'openai-responses-create': { request: ['POST', '/v1/responses', { model: 'llama3.2', input: 'hi' }], status: 503, check: jsonBody((body) => assert.equal(body.error.type, 'api_error')) },
  'openai-responses-get': { request: ['GET', '/v1/responses/resp_x'], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-responses-cancel': { request: ['POST', '/v1/responses/resp_x/cancel'], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-responses-delete': { request: ['DELETE', '/v1/responses/resp_x'], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-responses-input-items': { request: ['GET', '/v1/responses/resp_x/input_items'], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversations-create': { request: ['POST', '/v1/conversations', { metadata: { a: 'b' } }], status: 200, check: jsonBody((body) => assert.deepEqual([body.object, body.metadata], ['conversation', { a: 'b' }])) },
  'openai-conversations-get': { request: ['GET', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}`], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversations-update': { request: ['POST', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}`, { metadata: {} }], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversations-delete': { request: ['DELETE', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}`], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversation-items-list': { request: ['GET', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}/items`], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversation-items-create': { request: ['POST', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}/items`, { items: [{ role: 'user', content: 'x' }] }], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversation-items-get': { request: ['GET', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}/items/msg_x`], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  'openai-conversation-items-delete': { request: ['DELETE', `/v1/conversations/conv_${ABSENT.replaceAll('-', '')}/items/msg_x`], status: 404, check: jsonBody((body) => assert.equal(body.error.type, 'not_found_error')) },
  metrics: { request: ['GET', '/metrics'], status: 200, check: (type, body) => {
    assert.match(type, /^text\/plain; version=0\.0\.4/)
    assert.match(body, /^chat_ollama_generations_active 0$/m)
  } },
  web: { request: ['GET', '/'], status: 200, check: (type, body) => {
    assert.equal(type, 'text/html; charset=utf-8')
    assert.match(body, /<title>chat-ollama<\/title>/)
  } },
}

/** The folders the tests make: a build is a third of a gigabyte, removed once the file's tests are done. */
const madeFolders: string[] = []
test.after(() => {
  for (const folder of madeFolders) rmSync(folder, { recursive: true, force: true })
})
const madeFolder = (prefix: string): string => {
  const folder = mkdtempSync(join(tmpdir(), prefix))
  madeFolders.push(folder)
  return folder
}

let imageBuild: string | undefined
/** The build stage's result, made once for the tests that need it. */
const builtLikeTheImage = (): string => (imageBuild ??= buildLikeTheImage())

/**
 * Builds the way the build stage does: in a folder holding only what its COPY lines copy (with
 * this checkout's node_modules standing in for its `npm ci`), so a file the build needs but the
 * Dockerfile forgets fails here.
 */
function buildLikeTheImage(): string {
  const buildRoot = madeFolder('chat-ollama-build-')
  const copies = [...buildStage.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)]
  assert.ok(copies.length > 0, 'the build stage copies nothing')
  for (const [, sources, destination] of copies) {
    for (const source of sources!.split(/\s+/)) {
      const target = destination === './' ? join(buildRoot, source) : join(buildRoot, destination!)
      cpSync(join(PROJECT_ROOT, source), target, { recursive: true })
    }
  }
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(buildRoot, 'node_modules'))
  execFileSync(process.execPath, ['build.mjs'], { cwd: buildRoot, stdio: 'pipe' })
  return buildRoot
}

/** `name` and every package it needs at run time, as this checkout's node_modules has them. */
function packageClosure(name: string, found = new Set<string>()): Set<string> {
  const folder = join(PROJECT_ROOT, 'node_modules', name)
  if (found.has(name) || !existsSync(folder)) return found
  found.add(name)
  const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'))
  for (const dependency of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) packageClosure(dependency, found)
  return found
}

/**
 * An empty folder holding exactly what the runtime stage copies: the build stage's files, and
 * the packages the deps stage installs (this checkout's copies of them and what they need
 * standing in for its `npm install`).
 */
function runtimeFolder(buildRoot: string): string {
  const runtime = madeFolder('chat-ollama-runtime-')
  const copies = [...runtimeStage.matchAll(/^COPY --from=build (\S+) (\S+)$/gm)]
  assert.ok(copies.length > 0, 'the runtime stage copies nothing from the build stage')
  for (const [, from, to] of copies) {
    cpSync(join(buildRoot, from!.replace(/^\/app\/?/, '')), join(runtime, to!), { recursive: true })
  }
  assert.match(runtimeStage, /^COPY --from=deps \/app\/node_modules \.\/node_modules$/m)
  const installed = [...depsStage.matchAll(/"(@?[\w./-]+)@\$\(/g)].map((match) => match[1]!)
  assert.deepEqual(installed, ['sharp', '@modelcontextprotocol/client', 'pyodide', '@opentelemetry/api', '@opentelemetry/core', '@opentelemetry/resources', '@opentelemetry/sdk-trace', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/exporter-trace-otlp-proto'], 'the deps stage installs the packages the bundles leave out, and only those')
  const closure = installed.reduce((found, name) => packageClosure(name, found), new Set<string>())
  for (const name of closure) cpSync(join(PROJECT_ROOT, 'node_modules', name), join(runtime, 'node_modules', name), { recursive: true })
  return runtime
}

test('the Dockerfile never runs npm scripts on Alpine, where the glibc node devDependency cannot run', () => {
  for (const stage of stages.filter((text) => /alpine/.test(text.split('\n')[0]!))) {
    assert.doesNotMatch(stage, /^RUN .*npm (run|test|start)/m)
    assert.doesNotMatch(stage, /^RUN npm (ci|install)(?!.*--ignore-scripts)/m)
  }
  assert.match(runtimeStage, /^USER node$/m)
  assert.match(runtimeStage, /^HEALTHCHECK /m)
  assert.match(runtimeStage, /^VOLUME \["\/data"\]$/m)
})

test('what the runtime stage holds serves the API from an empty folder, and every function bundle loads alone', async (t) => {
  const runtime = runtimeFolder(builtLikeTheImage())
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(runtimeStage)![1]!) as string[]
  assert.equal(cmd[0], 'node')
  const vision = await fakeOllama(t, { models: ['gemma3:4b'], capabilities: { 'gemma3:4b': ['completion', 'vision', 'tools'] } })
  const mcp = await startMcpHttpServer(t, 'runtime-token')
  const web = await startFakeWeb(t, { '/article': { type: 'text/html', body: ARTICLE_HTML } })
  const mcpConfig = join(runtime, 'mcp.json')
  writeFileSync(mcpConfig, JSON.stringify({ mcpServers: { web: { url: mcp.url, headers: { authorization: 'Bearer runtime-token' } } }, builtin: { tools: { fetch_url: 'auto', run_python: 'auto' } } }))
  // Tracing on, in OTLP's default protobuf form: OpenTelemetry, shipped beside the bundles, exports.
  const collector = await startOtlpReceiver()
  const server = await spawnServer(t, cmd.slice(1), { cwd: runtime, env: { OLLAMA_HOST: vision.hostPort, DB_PATH: join(runtime, 'data', 'chat.db'), MCP_CONFIG: mcpConfig, FETCH_ALLOWED_HOSTS: '127.0.0.1', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '20' } })
  // After the server has stopped (hooks run in the order they were added).
  t.after(() => collector.close())
  const response = await fetch(`${server.url}/health`)
  assert.equal(response.status, 200)
  assert.equal((await json(response)).services.database, 'healthy')
  await collector.waitFor(() => collector.contentTypes.includes('application/x-protobuf'))
  // sharp, shipped beside the bundles, takes an image.
  const posted = await fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'What is it?', model: 'gemma3:4b', images: [dataUrl(pngFile(30, 20))], stream: false }),
  })
  assert.equal(posted.status, 200, await posted.clone().text())
  const listed = await json(await fetch(`${server.url}/v1/sessions/${(await json(posted)).session_id}/messages`))
  assert.deepEqual(listed.messages[0].images.map((image: any) => [image.media_type, image.width, image.height]), [['image/png', 30, 20]])
  // A body past 256 KiB: read by the worker thread embedded in the bundle.
  const large = await fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'And this?', model: 'gemma3:4b', images: [dataUrl(await largeJpeg(400 * 1024), 'image/jpeg')], stream: false }),
  })
  assert.equal(large.status, 200, await large.clone().text())
  // The MCP client, shipped beside the bundles, reaches a server.
  const tools = await json(await fetch(`${server.url}/v1/tools`))
  assert.deepEqual(tools.servers.map((listing: any) => [listing.name, listing.status, listing.tools.length]), [['builtin', 'ok', 2], ['web', 'ok', 9]])
  // The built-in tools' worker threads, embedded in the bundle, and Pyodide beside it.
  const ran = await json(await fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: `[[call fetch_url {"url":"${web.url}/article"}]] [[call run_python {"code":"print(6 * 7)"}]]`, model: 'gemma3:4b', tools: true, stream: false }),
  }))
  assert.match(ran.content, /marmalade-tide/, 'the page was read')
  assert.match(ran.content, /stdout:\n42/, 'the program ran')
  server.child.kill('SIGTERM')
  assert.equal((await server.exited).code, 0)

  const bundles = readdirSync(join(runtime, 'dist', 'functions')).filter((file) => file.endsWith('.mjs')).map((file) => file.slice(0, -4))
  assert.deepEqual(bundles.sort(), Object.keys(BUNDLE_CHECKS).sort(), 'every function bundle has a check here')
  mkdirSync(join(runtime, 'fn-data'))
  for (const bundle of bundles) {
    const { request, status, check } = BUNDLE_CHECKS[bundle]!
    // A fresh process and database per bundle, so nothing else is loaded; it answers a Request with a Response.
    const script = `const fn = (await import('./dist/functions/${bundle}.mjs')).default
      const [method, path, body] = ${JSON.stringify(request)}
      const init = body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
      const response = await fn.fetch(new Request('http://localhost' + path, init))
      if (!(response instanceof Response)) throw new Error('not a Response')
      console.log(JSON.stringify({ status: response.status, type: response.headers.get('content-type'), body: await response.text() }))`
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: runtime,
      env: { ...process.env, DB_PATH: join(runtime, 'fn-data', `${bundle}.db`), OLLAMA_HOST: '127.0.0.1:9', LOG_LEVEL: 'error' },
      encoding: 'utf8',
    })
    const answer = JSON.parse(output.trim().split('\n').at(-1)!)
    assert.equal(answer.status, status, `${bundle} answered ${output}`)
    check(answer.type, answer.body)
  }
  // Deployed where others reach it (HOST=0.0.0.0), a bundle needs a key like the server does.
  const guarded = execFileSync(process.execPath, ['--input-type=module', '-e', `const fn = (await import('./dist/functions/sessions-list.mjs')).default
    console.log((await fn.fetch(new Request('https://fn.example/v1/sessions'))).status)`], {
    cwd: runtime,
    env: { ...process.env, DB_PATH: join(runtime, 'fn-data', 'guarded.db'), HOST: '0.0.0.0', LOG_LEVEL: 'error' },
    encoding: 'utf8',
  })
  assert.equal(guarded.trim(), '401')

  // The admin command ships in the image too: `docker compose exec api node dist/admin.mjs …`.
  const admin = (...args: string[]) =>
    execFileSync(process.execPath, ['dist/admin.mjs', ...args], { cwd: runtime, env: { ...process.env, DB_PATH: join(runtime, 'fn-data', 'guarded.db') }, encoding: 'utf8' })
  assert.match(admin('user', 'add', 'alice', '--admin'), /\talice\tadmin\n$/)
  const key = admin('key', 'create', 'alice').trim().split('\n').at(-1)!
  const allowed = execFileSync(process.execPath, ['--input-type=module', '-e', `const fn = (await import('./dist/functions/sessions-list.mjs')).default
    console.log((await fn.fetch(new Request('https://fn.example/v1/sessions', { headers: { authorization: 'Bearer ${key}' } }))).status)`], {
    cwd: runtime,
    env: { ...process.env, DB_PATH: join(runtime, 'fn-data', 'guarded.db'), HOST: '0.0.0.0', LOG_LEVEL: 'error' },
    encoding: 'utf8',
  })
  assert.equal(allowed.trim(), '200', 'a key made by dist/admin.mjs opens the guarded bundle')
})

test('a function bundle alone in an empty folder runs on PostgreSQL when DATABASE_URL is set (its client is in the bundle, loaded only then)', async () => {
  const alone = madeFolder('chat-ollama-fn-alone-')
  cpSync(join(builtLikeTheImage(), 'dist/functions/sessions-create.mjs'), join(alone, 'sessions-create.mjs'))
  const databaseUrl = await (await postgresCluster()).newDatabase()
  const script = `const { default: fn } = await import('./sessions-create.mjs')
    const response = await fn.fetch(new Request('http://localhost/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":"on postgres"}' }))
    console.log(response.status, (await response.json()).title); process.exit(0)`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: alone, env: { PATH: process.env.PATH!, DATABASE_URL: databaseUrl, LOG_LEVEL: 'error' }, encoding: 'utf8' })
  assert.equal(out.trim(), '201 on postgres')
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  assert.equal((await sql`SELECT title FROM sessions`)[0]!.title, 'on postgres')
  await sql.end()
})

test('docker-compose publishes the API on loopback only and runs it read-only, without privileges or capabilities', () => {
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const api = compose.slice(compose.indexOf('\n  api:'), compose.indexOf('\n  ollama:'))
  assert.match(api, /^ {6}- "127\.0\.0\.1:8080:8080"$/m)
  assert.match(api, /^ {4}read_only: true$/m)
  assert.match(api, /^ {6}- no-new-privileges:true$/m)
  assert.match(api, /^ {4}cap_drop:\n {6}- ALL$/m)
  assert.doesNotMatch(api, /AUTH: *"?off/, 'the container never turns authentication off')
  assert.match(runtimeStage, /HOST=0\.0\.0\.0/, 'the image listens on all interfaces, which turns AUTH on')
})

test('docker-compose: the default store is SQLite; the postgres profile adds PostgreSQL with a volume and a health check, and the API waits for it', () => {
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const api = compose.slice(compose.indexOf('\n  api:'), compose.indexOf('\n  ollama:'))
  assert.match(api, /^ {6}DATABASE_URL: \$\{DATABASE_URL:-\}$/m, 'empty unless set: SQLite by default')
  assert.match(api, /^ {6}postgres:\n {8}condition: service_healthy\n {8}required: false$/m)
  const postgres = compose.slice(compose.indexOf('\n  postgres:'), compose.indexOf('\n  # Opt-in web search'))
  assert.match(postgres, /^ {4}image: postgres:\d+$/m)
  assert.match(postgres, /^ {4}profiles: \["postgres"\]$/m)
  assert.match(postgres, /^ {6}- postgres_data:\/var\/lib\/postgresql\/data$/m)
  assert.match(postgres, /^ {6}test: \["CMD", "pg_isready"/m)
  assert.doesNotMatch(postgres, /^ {4}ports:/m, 'PostgreSQL is not published')
  assert.match(postgres, /POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:-\}$/m, 'no default password')
})

test('docker-compose: the search profile adds SearXNG with its JSON API on, unpublished, and the API takes its address', () => {
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const api = compose.slice(compose.indexOf('\n  api:'), compose.indexOf('\n  ollama:'))
  assert.match(api, /^ {6}WEB_SEARCH_URL: \$\{WEB_SEARCH_URL:-\}$/m)
  const searxng = compose.slice(compose.indexOf('\n  searxng:'), compose.indexOf('\n  # Opt-in monitoring'))
  assert.match(searxng, /^ {4}profiles: \["search"\]$/m)
  assert.doesNotMatch(searxng, /^ {4}ports:/m, 'reached inside the network only')
  assert.match(searxng, /^ {8}target: \/etc\/searxng\/settings\.yml$/m)
  const settings = compose.slice(compose.indexOf('\n  searxng_settings:'), compose.indexOf('\n  prometheus_config:'))
  assert.match(settings, /^ {8}formats:\n {10}- html\n {10}- json$/m, 'the JSON API web_search reads')
})

test('docker-compose: the postgres profile runs a second API instance and a proxy in front of both that streams events unbuffered', () => {
  const compose = readFileSync(join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8')
  const replica = compose.slice(compose.indexOf('\n  api-2:'), compose.indexOf('\n  proxy:'))
  assert.match(replica, /^ {4}<<: \*api$/m, 'the same service as api')
  assert.match(compose, /^ {2}api: &api$/m)
  assert.match(replica, /^ {4}profiles: \["postgres"\]$/m, 'never beside SQLite')
  assert.match(replica, /^ {4}ports: \[\]$/m, 'reached through the proxy only')
  const proxy = compose.slice(compose.indexOf('\n  proxy:'), compose.indexOf('\n  ollama:'))
  assert.match(proxy, /^ {4}profiles: \["postgres"\]$/m)
  assert.match(proxy, /^ {6}- "127\.0\.0\.1:8000:8000"$/m, 'on loopback, like the API')
  const caddyfile = compose.slice(compose.indexOf('\n  caddyfile:'), compose.indexOf('\n  prometheus_config:'))
  assert.match(caddyfile, /reverse_proxy api:8080 api-2:8080 \{/)
  assert.match(caddyfile, /^ +flush_interval -1$/m, 'event streams are not buffered')
  assert.match(caddyfile, /^ +lb_try_duration \d+s$/m, 'a request finds the other instance while one restarts')
})
