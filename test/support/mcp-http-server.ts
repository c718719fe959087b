/**
 * An MCP server over Streamable HTTP on loopback, made with the official SDK, for the tests:
 * it answers only with the bearer token it is given, offers `add`, `search`, `delete_all` and a
 * few that behave in one particular way (`slow`, `fail`, `big`, `steps` with progress, `as_task`),
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
  /** Calls of `steps` that came with a progressToken (the client asked for progress). */
  progressAsked: number
  /** What `ask` got back from the client, in order. */
  answers: Array<{ what: string; action: string; content?: Record<string, unknown> | undefined }>
  /** Lets every call of `steps` with `hold` answer. */
  release(): void
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
  const held = Promise.withResolvers<void>()
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
    // Reports its progress `steps` times (notifications/progress, when the client asked with a progressToken), then answers.
    // With `hold`, it answers only once the test calls release().
    server.registerTool('steps', { description: 'Reports progress.', inputSchema: z.object({ steps: z.number().int().min(1).max(5000), hold: z.boolean().optional() }) }, async ({ steps, hold }, ctx) => {
      const progressToken = ctx.mcpReq._meta?.progressToken
      state.progressAsked += progressToken === undefined ? 0 : 1
      for (let step = 1; progressToken !== undefined && step <= steps; step++) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: step, total: steps, message: `Step ${step} of ${steps}` } })
      }
      if (hold) await held.promise
      return { content: [{ type: 'text', text: `${steps} steps done` }] }
    })
    // Asks its user for input mid-call (elicitation), on the call's own stream (`via: "call"`) or the session's.
    server.registerTool('ask', { description: 'Asks its user.', inputSchema: z.object({ what: z.string(), via: z.enum(['call', 'session']).optional() }) }, async ({ what, via }, ctx) => {
      const params = {
        mode: 'form' as const,
        message: `Which ${what}?`,
        requestedSchema: {
          type: 'object' as const,
          properties: {
            name: { type: 'string' as const, title: 'Name', minLength: 1 },
            count: { type: 'integer' as const, title: 'How many', minimum: 1, maximum: 9, default: 2 },
            colour: { type: 'string' as const, title: 'Colour', enum: ['red', 'green'] },
            sure: { type: 'boolean' as const, title: 'Sure', default: true },
          },
          required: ['name'],
        },
      }
      const answer = via === 'session' ? await ctx.mcpReq.elicitInput(params) : await ctx.mcpReq.send({ method: 'elicitation/create', params })
      state.answers.push({ what, ...answer })
      return { content: [{ type: 'text', text: answer.action === 'accept' ? `${what}: ${JSON.stringify(answer.content)}` : `${what}: ${answer.action}` }] }
    })
    // Runs only as a task (execution.taskSupport "required"): a client without tasks must not offer it.
    server.registerTool('as_task', { description: 'Runs only as a task.', inputSchema: z.object({}) }, async () => ({ content: [{ type: 'text', text: 'ran without a task' }] })).execution = { taskSupport: 'required' }
    for (const name of added) register(server, name)
    servers.push(server)
    return server
  }
  const state: McpHttpServer = {
    url: '',
    refused: 0,
    calls: [],
    cancelled: 0,
    progressAsked: 0,
    answers: [],
    release: () => held.resolve(),
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
