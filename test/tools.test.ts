/**
 * Tools, the part built so far (docs/tools.md): MCP_CONFIG read at start-up, MCP servers made
 * with the official SDK (Streamable HTTP on loopback, and a stdio script) reached through the
 * official client, and GET /v1/tools. Secrets in the file reach no answer and no log.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import toolsList from '../functions/tools-list.ts'
import { loadConfig, ConfigError } from '../lib/shared/config.ts'
import { json, recordingLogger, testApp, testServer, toRequest, within } from './support/app.ts'
import { startMcpHttpServer } from './support/mcp-http-server.ts'
import { rawStdioServer } from './support/mcp-raw-stdio-server.ts'
import { PROJECT_ROOT } from './support/process.ts'

const TOKEN = 'mcp-header-secret-4711'
const ENV_SECRET = 'mcp-env-secret-0815'
const STDIO_SCRIPT = join(PROJECT_ROOT, 'test/support/mcp-stdio-server.ts')

/** An MCP_CONFIG file of `servers`; its path. */
function mcpConfig(servers: Record<string, unknown>): string {
  const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
  writeFileSync(path, JSON.stringify({ mcpServers: servers }))
  return path
}

const stdioServer = (env: Record<string, string> = {}) => ({ command: process.execPath, args: ['--import', 'tsx', STDIO_SCRIPT], env: { SECRET_TOKEN: ENV_SECRET, ...env } })

// A secret of this process's environment, which no MCP server may see.
process.env.CHAT_OLLAMA_TEST_SECRET = 'ours-not-theirs'

async function toolsApp(t: TestContext, servers: Record<string, unknown>) {
  const log = recordingLogger()
  const app = await testApp(t, null, { MCP_CONFIG: mcpConfig(servers) }, log)
  t.after(() => app.tools.close())
  const list = async () => json(await toolsList.fetch(toRequest('GET /v1/tools'), app))
  return { app, log, list }
}

test('GET /v1/tools lists each server\'s tools as SERVER__TOOL with schema and policy, deny tools left out; no secret in the answer or the log', async (t) => {
  const mcp = await startMcpHttpServer(t, TOKEN)
  const { log, list } = await toolsApp(t, {
    web: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` }, tools: { add: 'auto', delete_all: 'deny' } },
    local: { ...stdioServer(), default: 'auto' },
  })
  const listed = await list()
  const answer = JSON.stringify(listed)
  assert.deepEqual(listed.servers.map((server: any) => [server.name, server.transport, server.status]), [['web', 'http', 'ok'], ['local', 'stdio', 'ok']])
  const web = listed.servers[0].tools
  assert.deepEqual(web.map((tool: any) => [tool.name, tool.policy]), [['web__add', 'auto'], ['web__search', 'ask'], ['web__slow', 'ask'], ['web__fail', 'ask'], ['web__big', 'ask'], ['web__chart', 'ask'], ['web__steps', 'ask'], ['web__ask', 'ask']])
  assert.equal(web[0].description, 'Adds two numbers.')
  assert.deepEqual(web[0].input_schema.required, ['a', 'b'])
  assert.equal(web[0].input_schema.properties.b.minimum, 0, 'the server\'s schema as it gave it')
  assert.deepEqual(listed.servers[1].tools.map((tool: any) => [tool.name, tool.policy]), [['local__echo', 'auto'], ['local__whoami', 'auto'], ['local__crash', 'auto']])
  // The stdio server's stderr is in our log under its name; it got its own env and the SDK's few
  // inherited variables, none of ours (the test's secret-looking variable stays here).
  const stderr = log.entries.filter((entry) => entry.message === 'mcp server stderr' && entry.fields.server === 'local').map((entry) => String(entry.fields.line))
  const names = stderr.find((line) => line.startsWith('env '))!.slice(4).split(',')
  assert.ok(names.includes('SECRET_TOKEN') && names.includes('PATH'), names.join(','))
  // NODE_V8_COVERAGE: Node hands it to every child while c8 measures coverage.
  assert.deepEqual(names.filter((name) => !['HOME', 'LOGNAME', 'PATH', 'SHELL', 'TERM', 'USER', 'SECRET_TOKEN', 'NODE_V8_COVERAGE'].includes(name)), [])
  for (const secret of [TOKEN, ENV_SECRET]) {
    assert.ok(!answer.includes(secret), 'not in the answer')
    assert.ok(!JSON.stringify(log.entries).includes(secret), 'not in the log')
  }
  assert.ok(!answer.includes(mcp.url), 'no server URL in the answer')
  // Connections are kept: a second listing makes no new session.
  assert.deepEqual(await list(), listed)
  assert.equal(log.entries.filter((entry) => entry.message === 'mcp server connected').length, 2)
})

test('a server\'s tool list is refreshed when it says it changed (notifications/tools/list_changed)', async (t) => {
  const mcp = await startMcpHttpServer(t, TOKEN)
  const { list } = await toolsApp(t, { web: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` } } })
  const before = ['web__add', 'web__search', 'web__delete_all', 'web__slow', 'web__fail', 'web__big', 'web__chart', 'web__steps', 'web__ask']
  assert.deepEqual((await list()).servers[0].tools.map((tool: any) => tool.name), before)
  mcp.addTool('weather')
  // The notification arrives on the session's event stream; the next listings show the new tool.
  const deadline = Date.now() + 10_000
  let names: string[] = []
  while (!names.includes('web__weather')) {
    assert.ok(Date.now() < deadline, `the new tool never showed: ${names.join(', ')}`)
    await new Promise((resolve) => setImmediate(resolve))
    names = (await list()).servers[0].tools.map((tool: any) => tool.name)
  }
})

test('a server that cannot be reached or crashes is listed unavailable, the others still are; a wrong token is refused by the server', async (t) => {
  const mcp = await startMcpHttpServer(t, TOKEN)
  const { log, list } = await toolsApp(t, {
    wrong_token: { url: mcp.url, headers: { authorization: 'Bearer not-the-token' } },
    crashing: stdioServer({ CRASH_AFTER_START: '1' }),
    fine: stdioServer(),
  })
  const listed = await list()
  assert.deepEqual(listed.servers.map((server: any) => [server.name, server.status, server.tools.length]), [['wrong_token', 'unavailable', 0], ['crashing', 'unavailable', 0], ['fine', 'ok', 3]])
  assert.ok(mcp.refused > 0)
  assert.ok(log.entries.some((entry) => entry.message === 'mcp server unavailable' && entry.fields.server === 'crashing'))
})

test('a bad MCP_CONFIG stops start-up with one line naming the place, quoting no value', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ mcpServers: { web: { url: 'ftp://x', headers: { authorization: `Bearer ${TOKEN}` } } } }, /mcpServers\.web/],
    [{ mcpServers: { 'bad__name': { command: 'x' } } }, /mcpServers/],
    [{ mcpServers: { web: { url: 'https://mcp.example', headers: { authorization: TOKEN }, tools: { search: 'maybe' } } } }, /must be auto, ask or deny/],
    [{ mcpServers: { web: { url: 'https://mcp.example', header: { authorization: TOKEN } } } }, /mcpServers\.web/],
    [{ mcpServers: { web: { url: 'https://mcp.example', oauth: { grant: 'client_credentials', client_id: 'svc' } } } }, /mcpServers\.web\.oauth: client_credentials needs client_id and client_secret/],
    [{ mcpServers: { web: { url: 'https://mcp.example', headers: { Authorization: TOKEN }, oauth: { client_id: 'svc', client_secret: TOKEN } } } }, /both an Authorization header and an oauth section/],
    [{ mcpServers: { web: { url: 'https://mcp.example', oauth: { client_id: 'svc', client_secret: TOKEN, secret: TOKEN } } } }, /mcpServers\.web\.oauth\.secret: has a field the oauth section does not know/],
    [{ mcpServers: { web: { url: 'https://mcp.example', oauth: { grant: 'password', client_secret: TOKEN } } } }, /must be authorization_code or client_credentials/],
    ['not json', /is not JSON/],
  ]
  for (const [content, message] of cases) {
    const path = join(mkdtempSync(join(tmpdir(), 'chat-ollama-mcp-')), 'mcp.json')
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
    assert.throws(() => loadConfig({ MCP_CONFIG: path }), (error: Error) => {
      assert.ok(error instanceof ConfigError)
      assert.match(error.message, /^MCP_CONFIG=".*" is not valid: /)
      assert.match(error.message, message)
      assert.doesNotMatch(error.message, /\n/)
      assert.ok(!error.message.includes(TOKEN), error.message)
      return true
    })
  }
  assert.throws(() => loadConfig({ MCP_CONFIG: '/no/such/mcp.json' }), /cannot be read \(ENOENT\)/)
  assert.deepEqual(loadConfig({}).mcpServers, [])
})

test('stdio MCP servers stop when the server shuts down', async (t) => {
  const server = await testServer(t, null, { MCP_CONFIG: mcpConfig({ local: stdioServer() }) })
  const log = recordingLogger()
  // The listing starts the stdio server; its pid is in its stderr, which the log has.
  Object.assign(server.app.log, log)
  const listed = await json(await fetch(`${server.url}/v1/tools`))
  assert.equal(listed.servers[0].status, 'ok')
  const pid = Number(/^pid (\d+)$/.exec(String(log.entries.find((entry) => /^pid /.test(String(entry.fields.line)))?.fields.line))?.[1])
  assert.ok(pid > 0)
  process.kill(pid, 0)
  await server.shutdown()
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the stdio server is gone')
})

test('policies are looked up by the tool\'s own name only: constructor, toString and __proto__ get their own policy or the default, never one of Object\'s', async (t) => {
  const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'plain']
  const { list } = await toolsApp(t, {
    asks: rawStdioServer(names),
    named: rawStdioServer(names, { default: 'auto', tools: JSON.parse('{"__proto__":"deny","toString":"deny","constructor":"ask","valueOf":"ask"}') }),
    denies: rawStdioServer(names, { default: 'deny', tools: { plain: 'auto' } }),
  })
  const listed = await list()
  const policies = (index: number) => listed.servers[index].tools.map((tool: any) => [tool.name.split('__').slice(1).join('__'), tool.policy])
  assert.deepEqual(policies(0), names.map((name) => [name, 'ask']), 'the default, ask, for every name')
  assert.deepEqual(policies(1), [['constructor', 'ask'], ['hasOwnProperty', 'auto'], ['valueOf', 'ask'], ['plain', 'auto']], 'a policy named in the file, else the default')
  assert.deepEqual(policies(2), [['plain', 'auto']], 'default deny leaves every other name out')
})

test('tool names a client could not call are left out with one log line each: not ^[A-Za-z0-9_-]{1,64}$, or a second tool of the same name', async (t) => {
  const long = 'x'.repeat(65)
  const { list, log } = await toolsApp(t, { odd: rawStdioServer(['fine', 'with space', 'dot.ted', long, '', 'fine', 'ünï', 'ok-2_x']) })
  const listed = await list()
  assert.deepEqual(listed.servers[0].tools.map((tool: any) => tool.name), ['odd__fine', 'odd__ok-2_x'])
  await list()
  const leftOut = log.entries.filter((entry) => entry.message === 'mcp tool left out')
  assert.deepEqual(leftOut.map((entry) => [entry.fields.server, entry.fields.reason]), [
    ['odd', 'name'], ['odd', 'name'], ['odd', 'name'], ['odd', 'name'], ['odd', 'duplicate'], ['odd', 'name'],
  ], 'once each, not again at the next listing')
  assert.ok(leftOut.every((entry) => String(entry.fields.tool).length <= 80), 'a long name is quoted cut')
})

/**
 * An MCP server's address that takes requests and never answers them, until revive(): then it
 * passes them on to `target` (a working MCP server). `requests` counts what it got while dead.
 */
async function deadThenAlive(t: TestContext, target: string) {
  const state = { requests: 0, alive: false, url: '' }
  const held: Array<() => void> = []
  const server = createServer((req: IncomingMessage, res) => {
    if (!state.alive) {
      state.requests++
      held.push(() => res.destroy())
      return
    }
    void (async () => {
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => !['host', 'connection', 'content-length'].includes(name))) as Record<string, string>
      const answer = await fetch(target, { method: req.method, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) })
      res.writeHead(answer.status, Object.fromEntries(answer.headers))
      if (answer.body) for await (const chunk of answer.body) res.write(chunk)
      res.end()
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const release of held) release()
    server.closeAllConnections()
    server.close()
  })
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  return Object.assign(state, { revive: () => void (state.alive = true) })
}

test('a server that does not answer initialize is given MCP_CONNECT_TIMEOUT, then kept down and retried in the background: the others answer at once meanwhile', async (t) => {
  const mcp = await startMcpHttpServer(t, TOKEN)
  const dead = await deadThenAlive(t, mcp.url)
  const log = recordingLogger()
  const app = await testApp(t, null, { MCP_CONFIG: mcpConfig({ dead: { url: dead.url, headers: { authorization: `Bearer ${TOKEN}` } }, fine: { url: mcp.url, headers: { authorization: `Bearer ${TOKEN}` } } }), MCP_CONNECT_TIMEOUT: '1s' }, log)
  t.after(() => app.tools.close())
  const list = async () => json(await toolsList.fetch(toRequest('GET /v1/tools'), app))
  const statuses = (listed: any) => listed.servers.map((server: any) => [server.name, server.status])
  assert.deepEqual(statuses(await list()), [['dead', 'unavailable'], ['fine', 'ok']])
  const tried = dead.requests
  assert.ok(tried >= 1)
  // Down now: listings do not try it again (they would wait for its timeout), the retry does.
  for (let round = 0; round < 5; round++) assert.deepEqual(statuses(await list()), [['dead', 'unavailable'], ['fine', 'ok']])
  assert.equal(dead.requests, tried, 'no listing tried the server that is down')
  assert.ok(log.entries.some((entry) => entry.message === 'mcp server unavailable' && entry.fields.server === 'dead' && typeof entry.fields.retry_in_ms === 'number'))
  // Once it answers, the background retry brings it back without a listing waiting for it.
  dead.revive()
  await within(30_000, 'the server to be retried', (async () => {
    while (statuses(await list())[0][1] !== 'ok') await new Promise((resolve) => setTimeout(resolve, 20))
  })())
  assert.deepEqual((await list()).servers[0].tools.map((tool: any) => tool.name).slice(0, 2), ['dead__add', 'dead__search'])
})
