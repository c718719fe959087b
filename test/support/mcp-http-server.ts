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
  /** Every tool call it got, in order. */
  calls: Array<{ name: string; arguments: Record<string, unknown> }>
  /** Calls of `slow` the client cancelled (notifications/cancelled reached the handler). */
  cancelled: number
  /** Resolves once `slow` has been called `count` times in all. */
  slowCalled(count?: number): Promise<void>
}

export async function startMcpHttpServer(t: TestContext, token: string): Promise<McpHttpServer> {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>()
  const servers: McpServer[] = []
  const added: string[] = []
  const register = (server: McpServer, name: string) =>
    server.registerTool(name, { description: `The ${name} tool.`, inputSchema: z.object({ query: z.string() }) }, async ({ query }) => {
      state.calls.push({ name, arguments: { query } })
      return { content: [{ type: 'text', text: `${name}: ${query}` }] }
    })
  const slowWaiters: Array<{ count: number; resolve: () => void }> = []
  const newServer = () => {
    const server = new McpServer({ name: 'test-http', version: '1.0.0' })
    server.registerTool('add', { description: 'Adds two numbers.', inputSchema: z.object({ a: z.number(), b: z.number().min(0) }) }, async ({ a, b }) => {
      state.calls.push({ name: 'add', arguments: { a, b } })
      return { content: [{ type: 'text', text: String(a + b) }] }
    })
    register(server, 'search')
    register(server, 'delete_all')
    // Never answers: it ends only when the client cancels it.
    server.registerTool('slow', { description: 'Takes forever.', inputSchema: z.object({}) }, async (_args, ctx) => {
      state.calls.push({ name: 'slow', arguments: {} })
      const made = state.calls.filter((call) => call.name === 'slow').length
      for (const waiter of slowWaiters.filter((waiter) => waiter.count <= made)) waiter.resolve()
      await new Promise<void>((resolve) => ctx.mcpReq.signal.addEventListener('abort', () => resolve(), { once: true }))
      state.cancelled++
      return { content: [{ type: 'text', text: 'stopped' }] }
    })
    server.registerTool('fail', { description: 'Always fails.', inputSchema: z.object({}) }, async () => ({ content: [{ type: 'text', text: 'the disk is on fire' }], isError: true }))
    // A result of `size` characters, two bytes each in UTF-8.
    server.registerTool('big', { description: 'A long result.', inputSchema: z.object({ size: z.number().int() }) }, async ({ size }) => ({ content: [{ type: 'text', text: 'é'.repeat(size) }] }))
    for (const name of added) register(server, name)
    servers.push(server)
    return server
  }
  const state: McpHttpServer = {
    url: '',
    refused: 0,
    calls: [],
    cancelled: 0,
    slowCalled: (count = 1) => new Promise<void>((resolve) => {
      if (state.calls.filter((call) => call.name === 'slow').length >= count) resolve()
      else slowWaiters.push({ count, resolve })
    }),
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
