import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { json } from './support/app.ts'
import { PROJECT_ROOT, spawnServer } from './support/process.ts'

const dockerfile = readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8')
const stages = dockerfile.split(/^FROM /m).slice(1)
const runtimeStage = stages.at(-1)!

const buildStage = stages[0]!

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
  models: { request: ['GET', '/v1/models'], status: 503, check: problemOf('ollama') },
  'sessions-list': { request: ['GET', '/v1/sessions'], status: 200, check: jsonBody((body) => assert.deepEqual(body, { sessions: [], next_cursor: null })) },
  'sessions-create': { request: ['POST', '/v1/sessions', { title: 'From a bundle' }], status: 201, check: jsonBody((body) => assert.equal(body.title, 'From a bundle')) },
  'session-get': { request: ['GET', `/v1/sessions/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'session-update': { request: ['PATCH', `/v1/sessions/${ABSENT}`, { title: 'x' }], status: 404, check: problemOf('not_found') },
  'session-delete': { request: ['DELETE', `/v1/sessions/${ABSENT}`], status: 404, check: problemOf('not_found') },
  'session-messages': { request: ['GET', `/v1/sessions/${ABSENT}/messages`], status: 404, check: problemOf('not_found') },
  'session-stream': { request: ['GET', `/v1/sessions/${ABSENT}/stream`], status: 404, check: problemOf('not_found') },
  'session-cancel': { request: ['POST', `/v1/sessions/${ABSENT}/cancel`], status: 404, check: problemOf('not_found') },
  web: { request: ['GET', '/'], status: 200, check: (type, body) => {
    assert.equal(type, 'text/html; charset=utf-8')
    assert.match(body, /<title>chat-ollama<\/title>/)
  } },
}

/**
 * Builds the way the build stage does: in a folder holding only what its COPY lines copy (with
 * this checkout's node_modules standing in for its `npm ci`), so a file the build needs but the
 * Dockerfile forgets fails here.
 */
function buildLikeTheImage(): string {
  const buildRoot = mkdtempSync(join(tmpdir(), 'chat-ollama-build-'))
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

/** An empty folder holding exactly what the runtime stage copies from the build stage. */
function runtimeFolder(buildRoot: string): string {
  const runtime = mkdtempSync(join(tmpdir(), 'chat-ollama-runtime-'))
  const copies = [...runtimeStage.matchAll(/^COPY --from=build (\S+) (\S+)$/gm)]
  assert.ok(copies.length > 0, 'the runtime stage copies nothing from the build stage')
  for (const [, from, to] of copies) {
    cpSync(join(buildRoot, from!.replace(/^\/app\/?/, '')), join(runtime, to!), { recursive: true })
  }
  assert.ok(!existsSync(join(runtime, 'node_modules')))
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
  const runtime = runtimeFolder(buildLikeTheImage())
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(runtimeStage)![1]!) as string[]
  assert.equal(cmd[0], 'node')
  const server = await spawnServer(t, cmd.slice(1), { cwd: runtime, env: { OLLAMA_HOST: '127.0.0.1:9', DB_PATH: join(runtime, 'data', 'chat.db') } })
  const response = await fetch(`${server.url}/health`)
  assert.equal(response.status, 200)
  assert.equal((await json(response)).services.database, 'healthy')
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
      const response = await fn.fetch(new Request('http://function.local' + path, init))
      if (!(response instanceof Response)) throw new Error('not a Response')
      console.log(JSON.stringify({ status: response.status, type: response.headers.get('content-type'), body: await response.text() }))`
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: runtime,
      // A deployed function is reached by its platform's host name, as a server on all interfaces is.
      env: { ...process.env, DB_PATH: join(runtime, 'fn-data', `${bundle}.db`), OLLAMA_HOST: '127.0.0.1:9', LOG_LEVEL: 'error', HOST: '0.0.0.0' },
      encoding: 'utf8',
    })
    const answer = JSON.parse(output.trim().split('\n').at(-1)!)
    assert.equal(answer.status, status, `${bundle} answered ${output}`)
    check(answer.type, answer.body)
  }
})
