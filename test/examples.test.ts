/**
 * Every `curl` example in the README and docs/ runs as written against a real server (its own
 * process, on the suite's backend) on the fake Ollama, and answers as shown: the status (every
 * request 2xx or 3xx, unless the shown answer is a problem with its status) and the shape of what
 * follows it (the keys and types of each JSON document or event shown, and its `type`, `object`,
 * `role` and `status`). The ids shown are placeholders: each one becomes, in later examples of
 * the same page, the id the server really answered in its place. An example that cannot run here
 * is marked `<!-- example: not run (why) -->` just above its block.
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { fakeOllama, storeEnv } from './support/app.ts'
import { jpegWithExif } from './support/images.ts'
import { PROJECT_ROOT, SERVER_FROM_SOURCE, spawnServer, type ServerProcess } from './support/process.ts'

interface Example {
  page: string
  line: number
  script: string
  /** The answer shown under the command, if any. */
  shown: string | null
  /** Why it is not run, when it is marked so. */
  notRun: string | null
}

const NOT_RUN = /^<!-- example: not run \((.+)\) -->$/

/** The shell blocks holding a curl command, in page order, each with the block shown after it. */
function examplesOf(page: string): Example[] {
  const lines = readFileSync(join(PROJECT_ROOT, page), 'utf8').split('\n')
  const examples: Example[] = []
  for (let index = 0; index < lines.length; index++) {
    if (!lines[index]!.startsWith('```')) continue
    const info = lines[index]!.slice(3).trim()
    const end = lines.findIndex((line, at) => at > index && line.startsWith('```'))
    const body = lines.slice(index + 1, end)
    if (info === 'sh' && body.some((line) => /(^|[;&|]\s*)curl /.test(line.trim()))) {
      let shown: string | null = null
      if (lines[end + 1]?.startsWith('```') && !['sh', 'js', 'python'].includes(lines[end + 1]!.slice(3).trim())) {
        const shownEnd = lines.findIndex((line, at) => at > end + 1 && line.startsWith('```'))
        shown = lines.slice(end + 2, shownEnd).join('\n')
      }
      const marker = NOT_RUN.exec(lines[index - 1] ?? '')
      examples.push({ page, line: index + 1, script: body.join('\n'), shown, notRun: marker ? marker[1]! : null })
    }
    index = end
  }
  return examples
}

const PAGES = ['README.md', ...readdirSync(join(PROJECT_ROOT, 'docs')).filter((file) => file.endsWith('.md')).sort().map((file) => `docs/${file}`)]

/** JSON documents in an answer: one JSON text, JSON lines, or the `data:` of SSE events. */
function documentsOf(text: string): unknown[] {
  const trimmed = text.trim()
  if (trimmed === '') return []
  try {
    return [JSON.parse(trimmed)]
  } catch { /* lines, below */ }
  const documents: unknown[] = []
  for (const line of trimmed.split('\n')) {
    const data = line.startsWith('data: ') ? line.slice(6) : line
    for (const value of jsonValuesIn(data)) {
      try {
        documents.push(JSON.parse(value))
      } catch { /* not JSON */ }
    }
  }
  return documents
}

/** The objects and arrays written one after another on a line (curl -s adds no line break between answers). */
function jsonValuesIn(line: string): string[] {
  const values: string[] = []
  let depth = 0
  let start = -1
  let inString = false
  for (let index = 0; index < line.length; index++) {
    const char = line[index]
    if (inString) {
      if (char === '\\') index++
      else if (char === '"') inString = false
    } else if (char === '"') {
      inString = depth > 0
    } else if (char === '{' || char === '[') {
      if (depth++ === 0) start = index
    } else if ((char === '}' || char === ']') && depth > 0 && --depth === 0) {
      values.push(line.slice(start, index + 1))
    }
  }
  return values
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g
/** Ids of the forms this API hands out: UUIDs, and prefixed ones (`resp_…`, `conv_…`, `msg_…`, `cko_…`). */
const PREFIXED_ID = /^(resp|conv|msg|fc|call|mcp|cko)_[A-Za-z0-9_-]{6,}$/
/** Values compared as they are: what a client branches on. */
const COMPARED = new Set(['type', 'object', 'role', 'status'])

type JsonType = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean'
const typeOf = (value: unknown): JsonType => (value === null ? 'null' : Array.isArray(value) ? 'array' : (typeof value as JsonType))

/**
 * Where `actual` differs in shape from `shown` (keys missing, other types, other compared values),
 * as paths; [] when it has the shape. Ids met on the way are recorded in `ids` (shown -> actual).
 */
function shapeDifferences(shown: unknown, actual: unknown, ids: Map<string, string>, path = '$'): string[] {
  const shownType = typeOf(shown)
  const actualType = typeOf(actual)
  // null stands for a value the example had none of; either may be absent there.
  if (shownType === 'null' || actualType === 'null') return []
  if (shownType !== actualType) return [`${path}: ${actualType}, shown ${shownType}`]
  if (shownType === 'string') {
    const shownIds = (shown as string).match(UUID) ?? []
    const actualIds = (actual as string).match(UUID) ?? []
    if (shownIds.length && shownIds.length === actualIds.length) shownIds.forEach((id, at) => ids.set(id, actualIds[at]!))
    else if (PREFIXED_ID.test(shown as string) && PREFIXED_ID.test(actual as string)) ids.set(shown as string, actual as string)
    return []
  }
  if (shownType === 'array') {
    const [first] = shown as unknown[]
    const [actualFirst] = actual as unknown[]
    return first === undefined || actualFirst === undefined ? [] : shapeDifferences(first, actualFirst, ids, `${path}[0]`)
  }
  if (shownType !== 'object') return []
  const differences: string[] = []
  for (const [key, value] of Object.entries(shown as Record<string, unknown>)) {
    const got = (actual as Record<string, unknown>)[key]
    if (!(key in (actual as object))) differences.push(`${path}.${key}: missing`)
    else if (COMPARED.has(key) && typeof value !== 'object' && value !== got) differences.push(`${path}.${key}: ${JSON.stringify(got)}, shown ${JSON.stringify(value)}`)
    else differences.push(...shapeDifferences(value, got, ids, `${path}.${key}`))
  }
  return differences
}

function runScript(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd, timeout: 30_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as NodeJS.ErrnoException).code ?? 1) || 1 : 0, stdout, stderr }))
  })
}

/** A server for one page's examples, with what those examples read (a photo, an export to import). */
async function serverFor(t: TestContext, page: string): Promise<{ server: ServerProcess; cwd: string; ids: Map<string, string> }> {
  const fake = await fakeOllama(t, {
    models: ['llama3.2:latest', 'qwen3:8b', 'gemma3:latest', 'nomic-embed-text:latest'],
    capabilities: { 'gemma3:latest': ['completion', 'vision'], 'qwen3:8b': ['completion', 'tools', 'thinking'] },
  })
  const cwd = mkdtempSync(join(tmpdir(), 'chat-ollama-examples-'))
  writeFileSync(join(cwd, 'photo.jpg'), await jpegWithExif(640, 480))
  writeFileSync(join(cwd, 'conversations.json'), JSON.stringify([chatGptExport()]))
  writeFileSync(join(cwd, 'handbook.md'), '# Handbook\n\n## Leave\n\nEvery employee has 25 days of paid leave a year.\n\n## Expenses\n\nReceipts are filed within 30 days.\n')
  const onPostgres = await storeEnv()
  const database = Object.keys(onPostgres).length ? onPostgres : { DB_PATH: join(cwd, 'chat.db') }
  const ids = new Map<string, string>()
  const env: Record<string, string> = { OLLAMA_HOST: fake.hostPort, RATE_LIMIT: '0', SHARE_LINKS: 'on', ...database }
  if (page === 'docs/security.md') {
    // Its examples act as an admin: the key shown (`cko_…`) stands for one made here.
    env.AUTH = 'required'
    const admin = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'lib/admin.ts', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...database }, encoding: 'utf8' })
    assert.equal(admin('user', 'add', 'alice', '--admin').status, 0)
    assert.equal(admin('user', 'add', 'bob').status, 0)
    const made = admin('key', 'create', 'alice', '--name', 'examples')
    assert.equal(made.status, 0, made.stderr)
    ids.set('cko_…', made.stdout.trim().split('\n').at(-1)!)
  }
  return { server: await spawnServer(t, SERVER_FROM_SOURCE, { env }), cwd, ids }
}

/** A ChatGPT export of one conversation, as `conversations.json` holds them. */
function chatGptExport() {
  const message = (role: string, text: string, time: number) => ({ id: `m${time}`, author: { role }, create_time: time, content: { content_type: 'text', parts: [text] }, metadata: {} })
  return {
    id: 'c0ffee00-0000-4000-8000-000000000001', title: 'Lisbon', create_time: 1_700_000_000, update_time: 1_700_000_100, current_node: 'a',
    mapping: {
      root: { id: 'root', parent: null, children: ['q'], message: null },
      q: { id: 'q', parent: 'root', children: ['a'], message: message('user', 'Where to eat in Lisbon?', 1_700_000_010) },
      a: { id: 'a', parent: 'q', children: [], message: message('assistant', 'Try Alfama.', 1_700_000_020) },
    },
  }
}

for (const page of PAGES) {
  const examples = examplesOf(page)
  if (examples.length === 0) continue
  test(`the examples of ${page} run as written and answer as shown`, async (t) => {
    const { server, cwd, ids } = await serverFor(t, page)
    const address = server.url.replace(/^http:\/\//, '')
    for (const example of examples) {
      const where = `${example.page}:${example.line}`
      if (example.notRun !== null) {
        assert.ok(example.notRun.length > 10, `${where}: not run, and it says why`)
        continue
      }
      let script = example.script.replaceAll('localhost:8080', address)
      for (const [shown, actual] of ids) script = script.replaceAll(shown, actual)
      assert.doesNotMatch(script, /…/, `${where}: every placeholder is an id an earlier answer gave`)
      const before = server.lines.length
      const { code, stdout, stderr } = await runScript(script, cwd)
      assert.equal(code, 0, `${where} failed (${code}): ${stderr}\n${stdout.slice(0, 2000)}`)
      // The requests it made, from the server's own log: up to a request of the test's own, sent
      // once the example's have all been answered (the log reaches the test through a pipe).
      const sentinel = `examples-${example.line}`
      await fetch(`${server.url}/health`, { method: 'HEAD', headers: { 'x-request-id': sentinel } })
      let end: number
      while ((end = server.lines.findIndex((line, index) => index >= before && line.includes(`"${sentinel}"`))) === -1) await new Promise((resolve) => setTimeout(resolve, 5))
      const statuses = server.lines.slice(before, end).map((line) => JSON.parse(line)).filter((entry) => entry.msg === 'request').map((entry) => Number(entry.status))
      assert.ok(statuses.length > 0, `${where}: it reached the server`)
      const shownDocuments = example.shown === null ? [] : documentsOf(example.shown)
      const shownProblem = shownDocuments.find((document: any) => typeof document?.status === 'number' && typeof document?.type === 'string' && document.type.startsWith('http')) as { status: number } | undefined
      for (const status of statuses) {
        if (shownProblem && status === shownProblem.status) continue
        assert.ok(status < 400, `${where}: answered ${status}\n${stdout.slice(0, 2000)}`)
      }
      if (example.shown === null) continue
      if (shownDocuments.length === 0) {
        // A plain answer (a status code, metric lines): each line shown starts a line of the answer, up to its first space.
        for (const line of example.shown.split('\n').filter(Boolean)) {
          const start = line.split(' ')[0]!
          assert.ok(stdout.split('\n').some((got) => got.startsWith(start)), `${where}: "${start}" in\n${stdout.slice(0, 2000)}`)
        }
        continue
      }
      const answered = documentsOf(stdout)
      let from = 0
      for (const shown of shownDocuments) {
        // The next document of the answer with the shape shown (an event stream may hold more than is shown).
        let tried: string[] = []
        const at = answered.findIndex((document, index) => {
          if (index < from) return false
          const found = new Map<string, string>()
          tried = shapeDifferences(shown, document, found)
          if (tried.length === 0) for (const [shownId, actual] of found) if (!ids.has(shownId)) ids.set(shownId, actual)
          return tried.length === 0
        })
        assert.notEqual(at, -1, `${where}: nothing answered has the shape of ${JSON.stringify(shown).slice(0, 300)} (last tried: ${tried.join('; ')})\n${stdout.slice(0, 2000)}`)
        from = at + 1
      }
    }
  })
}
