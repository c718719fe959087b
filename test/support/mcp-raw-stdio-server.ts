/**
 * An MCP server over stdio written by hand (JSON-RPC lines), for the tests of what a careless or
 * hostile server may send, which the SDK's own server would refuse to make: it offers the tools
 * named in TOOL_NAMES (a JSON array, any names, repeats included), each taking any arguments and
 * answering with its own name and what it got (TOOL_SCHEMAS, a JSON object, may give a tool its
 * input schema). With LEAK set (a secret of its configuration, such
 * as `Bearer sk-…`), a careless server: every answer, error and stderr line holds the secret's
 * last word alone and base64-encoded at each alignment; a tool called `fail` fails so.
 */
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** An MCP_CONFIG entry running this script with tools of exactly these names. */
export const rawStdioServer = (names: string[], config: Record<string, unknown> = {}) => ({
  command: process.execPath,
  args: ['--import', 'tsx', fileURLToPath(import.meta.url)],
  env: { TOOL_NAMES: JSON.stringify(names) },
  ...config,
})

function serve(): void {
  const names = JSON.parse(process.env.TOOL_NAMES ?? '[]') as string[]
  const schemas = JSON.parse(process.env.TOOL_SCHEMAS ?? '{}') as Record<string, unknown>
  const send = (message: unknown) => process.stdout.write(`${JSON.stringify(message)}\n`)
  const secret = process.env.LEAK?.split(' ').at(-1)
  const leaked = secret
    ? ` [${secret} ${Buffer.from(secret).toString('base64')} ${Buffer.from(`x${secret}`).toString('base64')} ${Buffer.from(`xy${secret}`).toString('base64url')}]`
    : ''
  if (secret) process.stderr.write(`starting with${leaked}\n`)
  createInterface({ input: process.stdin }).on('line', (line) => {
    const request = JSON.parse(line) as { id?: number | string; method: string; params?: any }
    if (request.id === undefined) return
    switch (request.method) {
      case 'initialize':
        send({ jsonrpc: '2.0', id: request.id, result: { protocolVersion: request.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'raw-stdio', version: '1.0.0' } } })
        break
      case 'tools/list':
        send({ jsonrpc: '2.0', id: request.id, result: { tools: names.map((name) => ({ name, description: `The ${name} tool.`, inputSchema: Object.hasOwn(schemas, name) ? schemas[name] : { type: 'object' } })) } })
        break
      case 'tools/call':
        if (request.params.name === 'fail') send({ jsonrpc: '2.0', id: request.id, error: { code: -32000, message: `could not authenticate${leaked}` } })
        else send({ jsonrpc: '2.0', id: request.id, result: { content: [{ type: 'text', text: `${request.params.name} ran with ${JSON.stringify(request.params.arguments ?? {})}${leaked}` }] } })
        break
      default:
        send({ jsonrpc: '2.0', id: request.id, error: { code: -32601, message: `no method ${request.method}` } })
    }
  })
}

if (import.meta.main) serve()
