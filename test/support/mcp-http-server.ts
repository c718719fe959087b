/**
 * An MCP server over Streamable HTTP on loopback, made with the official SDK, for the tests:
 * it answers only with the bearer token it is given, offers `add`, `search`, `delete_all` and a
 * few that behave in one particular way (`slow`, `fail`, `big`, `steps` with progress, `as_task`,
 * `chart` with an image and a resource link),
 * and can add a tool while clients are connected (they are told: `notifications/tools/list_changed`).
 */
import { McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server'
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestContext } from 'node:test'
import { z } from 'zod'
import { pngFile } from './images.ts'
import type { OAuthTestServer } from './oauth-server.ts'

export interface McpHttpServer {
  url: string
  /** Requests it refused for a missing or wrong token. */
  refused: number
  /** The bearer tokens of the requests it took, in order. */
  bearers: string[]
  /** The `traceparent` headers of the requests it took that had one (docs/tracing.md). */
  traceparents: string[]
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

/**
 * Who it answers: those with `token`, or (`oauth`) with a token its authorization server issued,
 * which it names in its protected-resource metadata (RFC 9728) and its 401s; a tool call may need
 * more scope (`callScopes`: a 403 insufficient_scope otherwise).
 */
export type McpHttpAccess = string | { oauth: OAuthTestServer; scopes: string[]; callScopes?: string[] }

export async function startMcpHttpServer(t: TestContext, access: McpHttpAccess): Promise<McpHttpServer> {
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
    // A result with an image (a real PNG, 96x64), a resource link, and with `broken`, an image part that is no image.
    server.registerTool('chart', { description: 'Draws a chart.', inputSchema: z.object({ broken: z.boolean().optional() }) }, async ({ broken }) => {
      state.calls.push({ name: 'chart', arguments: { broken } })
      return {
        content: [
          { type: 'text', text: 'Sales by month' },
          { type: 'image', data: pngFile(96, 64).toString('base64'), mimeType: 'image/png' },
          ...(broken ? [{ type: 'image' as const, data: Buffer.from('not an image').toString('base64'), mimeType: 'image/png' }] : []),
          { type: 'resource_link', uri: 'https://reports.example.com/sales.csv', name: 'sales.csv', mimeType: 'text/csv' },
        ],
      }
    })
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
    bearers: [],
    traceparents: [],
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
  const metadataUrl = () => `${new URL(state.url).origin}/.well-known/oauth-protected-resource/mcp`
  /** Why a request is refused (401 or 403, with its challenge), or undefined when it may go on. */
  const refusal = (authorization: string | undefined, body: Buffer): { status: number; challenge?: string } | undefined => {
    if (typeof access === 'string') return authorization === `Bearer ${access}` ? undefined : { status: 401 }
    const bearer = /^Bearer (.+)$/.exec(authorization ?? '')?.[1]
    const challenge = `Bearer resource_metadata="${metadataUrl()}", scope="${access.scopes.join(' ')}"`
    if (!access.oauth.accepts(bearer, access.scopes)) return { status: 401, challenge }
    const isCall = body.length > 0 && (JSON.parse(body.toString()) as { method?: string }).method === 'tools/call'
    if (isCall && access.callScopes && !access.oauth.accepts(bearer, access.callScopes)) {
      return { status: 403, challenge: `Bearer error="insufficient_scope", scope="${access.callScopes.join(' ')}", resource_metadata="${metadataUrl()}"` }
    }
    return undefined
  }
  const http = createServer((req, res) => {
    void (async () => {
      if (typeof access !== 'string' && req.method === 'GET' && req.url?.startsWith('/.well-known/oauth-protected-resource')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource: state.url, authorization_servers: [access.oauth.issuer], scopes_supported: [...new Set([...access.scopes, ...access.callScopes ?? []])] }))
        return
      }
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      const body = Buffer.concat(chunks)
      const refused = refusal(req.headers.authorization, body)
      if (refused) {
        state.refused++
        res.writeHead(refused.status, refused.challenge ? { 'www-authenticate': refused.challenge } : {}).end()
        return
      }
      state.bearers.push(req.headers.authorization?.slice('Bearer '.length) ?? '')
      if (typeof req.headers.traceparent === 'string') state.traceparents.push(req.headers.traceparent)
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
      const headers = new Headers(Object.entries(req.headers).flatMap(([name, value]) => (typeof value === 'string' ? [[name, value]] : [])))
      const request = new Request(new URL(req.url ?? '/', 'http://127.0.0.1'), { method: req.method ?? 'GET', headers, signal: closed.signal, ...(body.length ? { body } : {}) })
      const response = await transport.handleRequest(request)
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
