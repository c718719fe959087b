/**
 * An MCP server over Streamable HTTP on loopback, made with the official SDK, for the tests:
 * it answers only with the bearer token it is given, offers `add`, `search` and `delete_all`,
 * and can add a tool while clients are connected (they are told: `notifications/tools/list_changed`).
 */
import { McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { z } from 'zod'
import { toRequest } from '../../lib/http/node-http.ts'

export interface McpHttpServer {
  url: string
  /** Requests it refused for a missing or wrong token. */
  refused: number
  /** Adds a tool on every connected session. */
  addTool(name: string): void
}

export async function startMcpHttpServer(t: TestContext, token: string): Promise<McpHttpServer> {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>()
  const servers: McpServer[] = []
  const added: string[] = []
  const register = (server: McpServer, name: string) =>
    server.registerTool(name, { description: `The ${name} tool.`, inputSchema: z.object({ query: z.string() }) }, async ({ query }) => ({ content: [{ type: 'text', text: `${name}: ${query}` }] }))
  const newServer = () => {
    const server = new McpServer({ name: 'test-http', version: '1.0.0' })
    server.registerTool('add', { description: 'Adds two numbers.', inputSchema: z.object({ a: z.number(), b: z.number().min(0) }) }, async ({ a, b }) => ({
      content: [{ type: 'text', text: String(a + b) }],
    }))
    register(server, 'search')
    register(server, 'delete_all')
    for (const name of added) register(server, name)
    servers.push(server)
    return server
  }
  const state: McpHttpServer = {
    url: '',
    refused: 0,
    addTool(name) {
      added.push(name)
      for (const server of servers) register(server, name)
    },
  }
  const http = createServer((req, res) => {
    void (async () => {
      if (req.headers.authorization !== `Bearer ${token}`) {
        state.refused++
        res.writeHead(401).end()
        return
      }
      const closed = new AbortController()
      res.once('close', () => closed.abort())
      const sessionId = req.headers['mcp-session-id']
      let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined
      if (!transport) {
        if (sessionId) {
          res.writeHead(404).end()
          return
        }
        const made: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void sessions.set(id, made) })
        await newServer().connect(made)
        transport = made
      }
      const response = await transport.handleRequest(toRequest(req, closed.signal, 10 * 1024 * 1024))
      res.writeHead(response.status, Object.fromEntries(response.headers))
      if (response.body) for await (const chunk of response.body) res.write(chunk)
      res.end()
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    await Promise.all(servers.map((server) => server.close().catch(() => {})))
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  })
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  return state
}
