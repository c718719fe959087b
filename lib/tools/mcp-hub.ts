import type { CallToolResult, Client, Tool } from '@modelcontextprotocol/client'
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import type { Logger } from '../observability/log.ts'
import { NO_TRACING, outgoingTraceparent, type Tracer } from '../observability/tracing.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { McpServerConfig, ToolPolicy } from '../shared/mcp-config.ts'
import { maskSecrets, secretForms } from './secret-forms.ts'
import { ArgumentChecker } from './argument-check.ts'
import { BUILTIN_SERVER, type BuiltinTools } from './builtin/builtin-tools.ts'
import { InputWaiters, isShowableForm, MAX_INPUT_MESSAGE_CHARS } from './tool-inputs.ts'
import type { ToolInputAnswer } from '../store/input-store.ts'
import type { McpAuthStore } from '../store/mcp-auth-store.ts'
import { McpOAuth, SignInRequired, stateHash } from './mcp-oauth.ts'

/**
 * The MCP servers of MCP_CONFIG (docs/tools.md), through the official MCP client: each
 * connected when first needed and kept, its tool list cached and refreshed when the server says
 * it changed (`notifications/tools/list_changed`). stdio servers run with a minimal environment,
 * their stderr in our log under their name, and stop with the server.
 */

/** Separates a server's name from its tool's in the names the model and clients see. */
export const TOOL_SEPARATOR = '__'

/** A tool's own name, as OpenAI's function names (the server's name and `__` go before it). */
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/

/** A server that could not be connected is tried again in the background after this, doubling up to RETRY_MAX_MS. */
const RETRY_FIRST_MS = 2_000
const RETRY_MAX_MS = 5 * 60_000

/** Thrown at once for a server that is down, while the background retries it. */
class ServerDown extends Error {
  override name = 'ServerDown'
}

export interface ListedTool {
  /** `SERVER__TOOL`. */
  name: string
  description: string
  input_schema: Record<string, unknown>
  policy: Exclude<ToolPolicy, 'deny'>
}

export interface ServerListing {
  name: string
  /** `builtin`: the tools the server runs itself (lib/tools/builtin/), listed by their own names. */
  transport: McpServerConfig['transport'] | 'builtin'
  /** `unavailable`: it could not be reached or listed (the log says why); `sign_in_required`: it wants an admin's OAuth sign-in. */
  status: 'ok' | 'unavailable' | 'sign_in_required'
  tools: ListedTool[]
}

/** A tool a turn offers the model, with the server and the tool's own name it stands for. */
export interface OfferedTool extends ListedTool {
  server: string
  tool: string
}

/** What a server asks a call's user (MCP elicitation in form mode): a message and a form. */
export interface InputRequest {
  message: string
  requestedSchema: Record<string, unknown>
}

/** How a running call reports progress and asks its user for input. */
export interface CallHandlers {
  onProgress?: ((progress: { progress: number; total?: number | undefined; message?: string | undefined }) => void) | undefined
  /** Absent: nobody can be asked (a Responses run), and a request is declined. */
  ask?: ((request: InputRequest, signal: AbortSignal) => Promise<ToolInputAnswer>) | undefined
}

/**
 * The call a server's request (an elicitation) belongs to: the SDK reads a call's response stream
 * (and runs a 2026-era call's input rounds) in the call's own async context, so a request that
 * arrives there finds the call here.
 */
const runningCall = new AsyncLocalStorage<string>()

export class McpConnection {
  readonly config: McpServerConfig
  private readonly log: Logger
  private readonly version: string
  private readonly connectTimeoutMs: number
  private connected: Promise<Client> | undefined
  private tools: Tool[] | undefined
  /** Set while the server is down (it could not be connected or listed): its background retry. */
  private down: { failures: number; retry: NodeJS.Timeout } | undefined
  private closed = false
  private readonly secrets: string[]
  /** The calls running now, by a token of ours: how to ask each one's user. */
  private readonly running = new Map<string, CallHandlers>()
  /** Its OAuth, for an HTTP server without an Authorization header of its own. */
  readonly oauth: McpOAuth | undefined

  private readonly tracer: Tracer

  constructor(config: McpServerConfig, log: Logger, version: string, connectTimeoutMs: number, auth?: { store: McpAuthStore; key: Buffer | null }, tracer: Tracer = NO_TRACING) {
    this.config = config
    this.tracer = tracer
    this.log = log
    this.version = version
    this.connectTimeoutMs = connectTimeoutMs
    this.secrets = secretForms([...Object.values(config.transport === 'http' ? config.headers : config.env), ...(config.transport === 'http' && config.oauth?.clientSecret ? [config.oauth.clientSecret] : [])])
    this.oauth = config.transport === 'http' && config.oauth && auth
      ? new McpOAuth({ server: config.name, url: config.url, config: config.oauth, headers: config.headers, store: auth.store, key: auth.key, log, version, redact: (text) => this.redact(text) })
      : undefined
  }

  /**
   * What the server offers that a client can call, as last listed (listed now when not yet). A
   * server that is down fails at once: no request waits for its timeout again.
   */
  async listTools(): Promise<Tool[]> {
    const client = await this.reachable()
    try {
      this.tools ??= this.callable((await client.listTools(undefined, { timeout: this.connectTimeoutMs })).tools)
    } catch (error) {
      this.markDown(error)
      throw error
    }
    return this.tools
  }

  /** The connected client; a server that is down, or cannot be connected now (then it is down), fails at once. */
  private async reachable(): Promise<Client> {
    // A server waiting for a sign-in is used as soon as one is made, here or on another instance.
    if (this.down && this.oauth?.signInRequired) {
      await this.oauth.accessToken()
      if (!this.oauth.signInRequired) this.resume()
    }
    if (this.down) throw new ServerDown(`${this.config.name} is down; it is tried again in the background (${this.down.failures} failed attempts).`)
    try {
      return await this.client()
    } catch (error) {
      this.markDown(error)
      throw error
    }
  }

  /** Tries the server again now (after a sign-in). */
  resume(): void {
    clearTimeout(this.down?.retry)
    this.down = undefined
  }

  /** Keeps the server down and tries it again later, each time waiting twice as long (up to RETRY_MAX_MS). */
  private markDown(error: unknown): void {
    if (this.closed || this.down) return
    this.down = { failures: 1, retry: this.retryLater(1) }
    this.log.warn('mcp server unavailable', { server: this.config.name, error: this.redact((error as Error).message ?? String(error)), retry_in_ms: RETRY_FIRST_MS })
  }

  private retryLater(failures: number): NodeJS.Timeout {
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1))
    const timer = setTimeout(() => {
      void this.client()
        .then((client) => client.listTools(undefined, { timeout: this.connectTimeoutMs }))
        .then(({ tools }) => {
          this.tools = this.callable(tools)
          this.down = undefined
        }, (error: unknown) => {
          if (this.closed || !this.down) return
          this.down = { failures: failures + 1, retry: this.retryLater(failures + 1) }
          this.log.debug('mcp server still unavailable', { server: this.config.name, error: this.redact((error as Error).message ?? String(error)) })
        })
    }, delay)
    timer.unref()
    return timer
  }

  /**
   * The tools whose names a model and OpenAI's clients can use (TOOL_NAME), each name once, that
   * run as a plain call (one that requires task augmentation, `execution.taskSupport: "required"`,
   * cannot: this client does not run tasks): any other is left out, with one log line each time
   * the server lists it.
   */
  private callable(tools: Tool[]): Tool[] {
    const seen = new Set<string>()
    return tools.filter((tool) => {
      const reason = !TOOL_NAME.test(tool.name) ? 'name' : seen.has(tool.name) ? 'duplicate' : tool.execution?.taskSupport === 'required' ? 'requires tasks' : undefined
      seen.add(tool.name)
      if (reason) this.log.warn('mcp tool left out', { server: this.config.name, tool: JSON.stringify(tool.name).slice(0, 80), reason })
      return reason === undefined
    })
  }

  /**
   * Runs one tool. `signal` cancels it (the SDK sends `notifications/cancelled`, which the call
   * sees; closing the connection would not reach it); past `timeoutMs` the SDK cancels it too.
   */
  async callTool(tool: string, args: Record<string, unknown>, signal: AbortSignal, timeoutMs: number, handlers: CallHandlers = {}): Promise<CallToolResult> {
    const client = await this.reachable()
    signal.throwIfAborted()
    const token = randomUUID()
    this.running.set(token, handlers)
    try {
      // With `onprogress`, the SDK asks the server for progress (a progressToken) and hands each report over.
      const { onProgress } = handlers
      return await runningCall.run(token, () => client.callTool({ name: tool, arguments: args }, { signal, timeout: timeoutMs, ...(onProgress ? { onprogress: onProgress } : {}) })) as CallToolResult
    } catch (error) {
      // A 403 insufficient_scope: the tokens do not reach this tool; the next sign-in asks for more.
      if (this.oauth && (error as Error)?.name === 'InsufficientScopeError') {
        await this.oauth.needsScope((error as { requiredScope?: string }).requiredScope)
        throw new SignInRequired(`${this.config.name} needs a wider sign-in for this tool (an admin signs in again)`)
      }
      throw error
    } finally {
      this.running.delete(token)
    }
  }

  /**
   * A server's `elicitation/create`: put to the user of the call it belongs to (found by the call's
   * async context; else the one call running, when only one is). Declined when no call of a
   * chat can be told (none, several, a Responses run), for a URL-mode request, or for a form this
   * client does not show (docs/tools.md "Input for a tool").
   */
  private async elicit(params: Record<string, unknown>, signal: AbortSignal): Promise<ToolInputAnswer> {
    const token = runningCall.getStore() ?? (this.running.size === 1 ? [...this.running.keys()][0] : undefined)
    const ask = token === undefined ? undefined : this.running.get(token)?.ask
    const why = !ask ? 'no chat call to ask' : params.mode === 'url' ? 'URL mode is not supported' : !isShowableForm(params.requestedSchema) ? 'not a form this client shows' : undefined
    if (why) {
      this.log.info('mcp input request declined', { server: this.config.name, reason: why })
      return { action: 'decline' }
    }
    return ask!({ message: String(params.message ?? '').slice(0, MAX_INPUT_MESSAGE_CHARS), requestedSchema: params.requestedSchema as Record<string, unknown> }, signal)
  }

  private client(): Promise<Client> {
    this.connected ??= this.connect().catch((error: unknown) => {
      this.connected = undefined
      throw error
    })
    return this.connected
  }

  private async connect(): Promise<Client> {
    const { config } = this
    // The SDK is loaded only when a server is used (it is external to the bundles, like sharp).
    const [{ Client, StreamableHTTPClientTransport }, { StdioClientTransport }] = await Promise.all([import('@modelcontextprotocol/client'), import('@modelcontextprotocol/client/stdio')])
    const client = new Client({ name: 'chat-ollama', version: this.version }, {
      // Form-mode elicitation, the form's defaults filled in for what the user left out (SEP-1034).
      capabilities: { elicitation: { form: { applyDefaults: true } } },
      listChanged: {
        tools: {
          onChanged: (error, tools) => {
            if (error) this.log.warn('mcp tool list refresh failed', { server: config.name, error: this.redact(error.message) })
            else if (tools) this.tools = this.callable(tools)
          },
        },
      },
    })
    client.setRequestHandler('elicitation/create', async (request, ctx) => ({ ...await this.elicit(request.params as Record<string, unknown>, ctx.mcpReq.signal) }))
    const transport = config.transport === 'http'
      ? new StreamableHTTPClientTransport(new URL(config.url), { requestInit: { headers: config.headers }, fetch: (url, init) => this.fetchTraced(url, init), ...(this.oauth ? { authProvider: this.oauth.authProvider() } : {}) })
      // Only what the file gives, over the SDK's few inherited variables (HOME, LOGNAME, PATH,
      // SHELL, TERM, USER): none of our environment's secrets reach the server.
      : new StdioClientTransport({ command: config.command, args: config.args, env: config.env, stderr: 'pipe' })
    if (transport instanceof StdioClientTransport && transport.stderr) {
      createInterface({ input: transport.stderr as unknown as NodeJS.ReadableStream }).on('line', (line) => this.log.info('mcp server stderr', { server: config.name, line: this.redact(line).slice(0, 2000) }))
    }
    client.onclose = () => {
      // Gone (a crashed stdio server, a dropped session): the next use connects again.
      this.connected = undefined
      this.tools = undefined
    }
    try {
      await client.connect(transport, { timeout: this.connectTimeoutMs })
    } catch (error) {
      await transport.close().catch(() => {})
      throw error
    }
    this.log.info('mcp server connected', { server: config.name, transport: config.transport })
    return client
  }

  /** A request to the server, with the traceparent of the span it is made in (a tool call's), when tracing is on. */
  private fetchTraced(url: string | URL, init?: RequestInit): Promise<Response> {
    const traceparent = outgoingTraceparent(this.tracer)
    if (!traceparent) return fetch(url, init)
    const headers = new Headers(init?.headers)
    headers.set('traceparent', traceparent)
    return fetch(url, { ...init, headers })
  }

  /** `text` with every secret of this server's configuration (header and env values) masked, in any of its forms. */
  redact(text: string): string {
    return maskSecrets(text, this.secrets)
  }

  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.down?.retry)
    const connected = this.connected
    this.connected = undefined
    const client = await connected?.catch(() => undefined)
    await client?.close().catch(() => {})
  }
}

export class McpHub {
  private readonly connections: McpConnection[]
  /** The calls of this instance waiting for their user's input (docs/tools.md "Input for a tool"). */
  readonly inputs = new InputWaiters()
  /** Checks the arguments of the model's calls against the tools' schemas, within a time limit. */
  readonly checker = new ArgumentChecker()

  /** The built-in tools MCP_CONFIG turns on, if any. */
  readonly builtin: BuiltinTools | undefined

  private readonly auth: { store: McpAuthStore; key: Buffer | null } | undefined
  private readonly log: Logger

  constructor(servers: McpServerConfig[], log: Logger, version: string, connectTimeoutMs: number, builtin?: BuiltinTools, auth?: { store: McpAuthStore; key: Buffer | null }, tracer: Tracer = NO_TRACING) {
    this.connections = servers.map((server) => new McpConnection(server, log, version, connectTimeoutMs, auth, tracer))
    this.auth = auth
    this.log = log
    this.builtin = builtin?.tools.length ? builtin : undefined
  }

  /** Whether any tool is configured at all (an MCP server, or a built-in tool). */
  get configured(): boolean {
    return this.connections.length > 0 || this.builtin !== undefined
  }

  /** Every configured server with the tools a user may use (deny tools left out), each policy said; the built-in tools first. */
  async list(): Promise<ServerListing[]> {
    const builtin: ServerListing[] = this.builtin
      ? [{ name: BUILTIN_SERVER, transport: 'builtin', status: 'ok', tools: this.builtin.tools.map(({ name, description, input_schema, policy }) => ({ name, description, input_schema, policy })) }]
      : []
    return [...builtin, ...await Promise.all(this.connections.map(async (connection): Promise<ServerListing> => {
      const { name, transport, tools: policies, defaultPolicy } = connection.config
      try {
        const tools = (await connection.listTools()).flatMap((tool): ListedTool[] => {
          const policy = policies.get(tool.name) ?? defaultPolicy
          if (policy === 'deny') return []
          return [{ name: `${name}${TOOL_SEPARATOR}${tool.name}`, description: tool.description ?? '', input_schema: tool.inputSchema as Record<string, unknown>, policy }]
        })
        // A server that wants a wider sign-in still offers what the tokens reach.
        return { name, transport, status: connection.oauth?.signInRequired ? 'sign_in_required' : 'ok', tools }
      } catch {
        // Logged when it went down, not at every listing.
        return { name, transport, status: connection.oauth?.signInRequired ? 'sign_in_required' : 'unavailable', tools: [] }
      }
    }))]
  }

  /**
   * The tools a turn offers the model: every allowed one (`true`), or those named (an unknown or
   * denied name: a 400 naming it). A server that cannot be reached offers nothing.
   */
  async offered(selection: true | string[]): Promise<OfferedTool[]> {
    const listings = await this.list()
    const ownName = (listing: ServerListing, name: string) => (listing.transport === 'builtin' ? name : name.slice(listing.name.length + TOOL_SEPARATOR.length))
    const available = new Map(listings.flatMap((listing) => listing.tools.map((tool) => [tool.name, { ...tool, server: listing.name, tool: ownName(listing, tool.name) }] as const)))
    const offered = selection === true ? [...available.values()] : this.chosen(selection, available, listings)
    this.builtin?.prepare(offered.map((tool) => tool.name))
    return offered
  }

  private chosen(selection: string[], available: Map<string, OfferedTool>, listings: ServerListing[]): OfferedTool[] {
    return selection.map((name, index) => {
      const tool = available.get(name)
      if (!tool) {
        const server = listings.find((listing) => name.startsWith(`${listing.name}${TOOL_SEPARATOR}`))
        const why = server?.status === 'unavailable' ? `its server ${server.name} cannot be reached now`
          : server?.status === 'sign_in_required' ? `its server ${server.name} needs an admin to sign in first` : 'no configured tool has that name (GET /v1/tools lists them)'
        throw new HttpProblem(400, 'validation', `tools[${index}]: ${JSON.stringify(name.slice(0, 200))} cannot be used: ${why}.`)
      }
      return tool
    })
  }

  /** The OAuth of a server of MCP_CONFIG that signs in with it; 404 for any other name. */
  oauthOf(name: string): McpOAuth {
    const oauth = this.server(name)?.oauth
    if (!oauth) throw new HttpProblem(404, 'not_found', 'No MCP server of that name signs in with OAuth (GET /v1/tools lists the servers).')
    return oauth
  }

  /** The connection of a server of MCP_CONFIG. */
  server(name: string): McpConnection | undefined {
    return this.connections.find((connection) => connection.config.name === name)
  }

  /**
   * Finishes the sign-in whose state the authorization server sent back (any instance may take
   * it): 400 for a state that is unknown, used or expired.
   */
  async finishSignIn(state: string, code: string, iss: string | undefined): Promise<string> {
    const signIn = this.auth && await this.auth.store.takeSignIn(stateHash(state), new Date().toISOString())
    const connection = signIn && this.server(signIn.server)
    if (!signIn || !connection?.oauth) throw new HttpProblem(400, 'validation', 'This sign-in is unknown, was already used, or ran out (they last 10 minutes): start it again.')
    try {
      await connection.oauth.finishSignIn(signIn, code, iss)
    } catch (error) {
      if (!(error instanceof HttpProblem)) this.log.warn('mcp sign-in failed', { server: connection.config.name, error: connection.oauth.describe(error) })
      throw error
    }
    connection.resume()
    return connection.config.name
  }

  /** Uses up a sign-in the authorization server refused (its state is good no more). */
  async abandonSignIn(state: string): Promise<void> {
    const signIn = this.auth && await this.auth.store.takeSignIn(stateHash(state), new Date().toISOString())
    if (signIn) this.log.info('mcp sign-in refused', { server: signIn.server })
  }

  /** Stops every connection (and every stdio server process). */
  async close(): Promise<void> {
    await Promise.all([...this.connections.map((connection) => connection.close()), this.checker.close(), this.builtin?.close()])
  }
}
