/**
 * The client the MCP conformance suite drives (`conformance client --command … <server URL>`, the
 * scenario in MCP_CONFORMANCE_SCENARIO): this whole server, its MCP_CONFIG naming the scenario's
 * URL, and a chat per tool the scenario's server offers in which the fake model calls it
 * (arguments made from its schema). A request for input is answered as a user who leaves the form
 * as it is (accept with no values: the form's defaults apply). Exits 1 when the server could not
 * be listed or a call got no result. test/mcp-conformance.test.ts runs it.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer } from '../../lib/server.ts'
import { silentLogger } from '../../lib/observability/log.ts'
import { loadConfig } from '../../lib/shared/config.ts'
import { parseSse } from '../support/app.ts'
import { startFakeOllama } from '../support/fake-ollama.ts'

const url = process.argv.at(-1)!
/** What an auth scenario gives the client: a pre-registered client's id and secret. */
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as { client_id?: string; client_secret?: string }
const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? ''
const oauth = scenario.startsWith('auth/client-credentials')
  ? { grant: 'client_credentials', client_id: context.client_id, client_secret: context.client_secret }
  : context.client_id ? { client_id: context.client_id, ...(context.client_secret ? { client_secret: context.client_secret } : {}) } : undefined
const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-conformance-')), 'mcp.json')
writeFileSync(config, JSON.stringify({ mcpServers: { conformance: { url, default: 'auto', ...(oauth ? { oauth } : {}) } } }))
const fake = await startFakeOllama()
const running = await startServer(loadConfig({
  DB_PATH: ':memory:', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', OLLAMA_HOST: fake.hostPort, MCP_CONFIG: config, MCP_OAUTH_KEY: randomBytes(32).toString('base64'),
}), { log: silentLogger })
const api = (path: string, body?: unknown) =>
  fetch(`${running.url}${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Arguments that fit a tool's input schema: each property a plain value of its type. */
function argumentsFor(schema: { properties?: Record<string, { type?: string }> }): Record<string, unknown> {
  const values: Record<string, unknown> = { number: 2, integer: 2, string: 'conformance', boolean: true, array: [], object: {} }
  return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([name, property]) => [name, values[property.type ?? 'string'] ?? 'conformance']))
}

/** A chat in which the model calls `tool`: its result, once the reply is done (input asked for on the way is answered). */
async function call(tool: { name: string; input_schema: Record<string, any> }): Promise<string | undefined> {
  const response = await api('/v1/chat', { message: `[[call ${tool.name} ${JSON.stringify(argumentsFor(tool.input_schema))}]]`, model: 'qwen3:8b', tools: [tool.name] })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let raw = ''
  let seen = 0
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    raw += value
    const { events } = parseSse(raw.slice(0, raw.lastIndexOf('\n\n') + 2))
    for (const { data } of events.slice(seen)) {
      if (data.type === 'input_required') await api(`/v1/sessions/${data.session_id}/tool-calls/${data.call_id}/input`, { action: 'accept', content: {} })
    }
    seen = events.length
  }
  return parseSse(raw).events.find((event) => event.data.type === 'tool_result')?.data.content
}

type Listing = { name: string; status: string; tools: Array<{ name: string; input_schema: Record<string, any> }> }
const listing = async () => ((await (await api('/v1/tools')).json()) as { servers: Listing[] }).servers.find((entry) => entry.name === 'conformance')!

/** An admin's sign-in, with the browser's part: the authorization server's redirect followed to our callback. */
async function signIn(): Promise<void> {
  const started = await (await api('/v1/admin/mcp/conformance/sign-in', {})).json() as { authorization_url?: string; detail?: string }
  if (!started.authorization_url) throw new Error(`the sign-in did not start: ${started.detail}`)
  const location = (await fetch(started.authorization_url, { redirect: 'manual' })).headers.get('location')
  const page = location ? await fetch(location) : undefined
  console.log(`signed in: ${page?.status ?? 'no redirect'}`)
}

let failed = false
try {
  let server = await listing()
  if (server.status === 'sign_in_required') {
    await signIn()
    server = await listing()
  }
  console.log(`${server.status}: ${server.tools.map((tool) => tool.name).join(', ') || 'no tools'}`)
  failed = server.status !== 'ok'
  for (const tool of server.tools) {
    let result = await call(tool)
    // A tool that needs a wider scope: the admin signs in again, and the call is made again.
    if (result?.includes('needs a wider sign-in')) {
      await signIn()
      result = await call(tool)
    }
    console.log(`${tool.name}: ${result ?? 'no result'}`)
    failed ||= result === undefined
  }
} finally {
  await running.shutdown()
  await fake.close()
}
process.exit(failed ? 1 : 0)
