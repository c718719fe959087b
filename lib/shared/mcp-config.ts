import { readFileSync } from 'node:fs'
import * as v from 'valibot'

/**
 * MCP_CONFIG (docs/tools.md): the MCP servers whose tools the server may run, in the common
 * `mcp.json` shape, with a policy per tool. Read once at start-up; its headers and env hold
 * secrets, so nothing read from it is ever quoted back (not in an error, a log or an answer).
 */

export type ToolPolicy = 'auto' | 'ask' | 'deny'

interface ServerCommon {
  /** The server's name: the first part of its tools' names (`SERVER__TOOL`). */
  name: string
  /** Policies of named tools (a Map: a tool may be called `constructor`); any other gets `defaultPolicy`. */
  tools: ReadonlyMap<string, ToolPolicy>
  defaultPolicy: ToolPolicy
}

/**
 * How an HTTP server's OAuth is done (docs/tools.md "Servers that sign in with OAuth"): with this
 * service's own client credentials (machine to machine), or by an admin signing in once in a
 * browser (authorization code with PKCE; the client registered dynamically unless `clientId` is
 * given). A server with an Authorization header of its own does no OAuth.
 */
export type McpOAuthConfig =
  | { grant: 'client_credentials'; clientId: string; clientSecret: string; scope: string | undefined; issuer: string | undefined }
  | { grant: 'authorization_code'; clientId: string | undefined; clientSecret: string | undefined; scope: string | undefined }

export type McpServerConfig =
  | (ServerCommon & { transport: 'http'; url: string; headers: Record<string, string>; oauth: McpOAuthConfig | null })
  | (ServerCommon & { transport: 'stdio'; command: string; args: string[]; env: Record<string, string> })

const Policy = v.picklist(['auto', 'ask', 'deny'], 'must be auto, ask or deny')
const Strings = v.record(v.string(), v.string('must be a string'), 'must be an object of strings')
const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)
// Read from the object's own entries into a Map: a record would drop keys such as `__proto__`, and
// a lookup on an object would find `constructor` on every one of them.
const ToolPolicies = v.pipe(
  v.custom<Record<string, unknown>>(isPlainObject, 'must be an object of policies'),
  v.transform((policies) => new Map(Object.entries(policies))),
  v.map(v.pipe(v.string(), v.regex(/^[\w.-]{1,128}$/, 'must be a tool name')), Policy, 'must be an object of policies'),
)
const common = {
  tools: v.optional(ToolPolicies, {}),
  default: v.optional(Policy, 'ask'),
}
const HttpUrl = v.pipe(v.string('must be a string'), v.check((url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol), 'must be an http(s) URL'))
const OAuthText = v.pipe(v.string('must be a string'), v.nonEmpty('must not be empty'), v.maxLength(2048, 'must be at most 2048 characters'))
const OAuthSection = v.strictObject({
  grant: v.optional(v.picklist(['authorization_code', 'client_credentials'], 'must be authorization_code or client_credentials'), 'authorization_code'),
  client_id: v.optional(OAuthText),
  client_secret: v.optional(OAuthText),
  scope: v.optional(OAuthText),
  /** The authorization server's issuer the client credentials are for: they are sent to no other. */
  issuer: v.optional(HttpUrl),
}, 'has a field the oauth section does not know (grant, client_id, client_secret, scope, issuer)')
const HttpServer = v.strictObject({
  type: v.optional(v.picklist(['http', 'streamable-http'], 'must be http or streamable-http')),
  url: HttpUrl,
  headers: v.optional(Strings, {}),
  oauth: v.optional(OAuthSection),
  ...common,
}, 'has a field this server does not know')
const StdioServer = v.strictObject({
  type: v.optional(v.literal('stdio', 'must be stdio')),
  command: v.pipe(v.string('must be a string'), v.nonEmpty('must not be empty')),
  args: v.optional(v.array(v.string('must be a string'), 'must be an array of strings'), []),
  env: v.optional(Strings, {}),
  ...common,
}, 'has a field this server does not know')
// Two underscores separate a server's name from its tool's in the names the model sees.
const ServerName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9-]+(_[A-Za-z0-9-]+)*$/, 'must be 1-64 letters, digits, - and single _'), v.maxLength(64, 'must be 1-64 letters, digits, - and single _'))
/** The tools the server runs itself (docs/builtin-tools.md), each off unless the file's `builtin.tools` names it. */
export const BUILTIN_TOOL_NAMES = ['web_search', 'fetch_url', 'run_python'] as const
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number]
const BuiltinSection = v.strictObject({
  tools: v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, 'must be an object of policies'),
    v.transform((policies) => new Map(Object.entries(policies))),
    v.map(v.picklist(BUILTIN_TOOL_NAMES, `must be one of ${BUILTIN_TOOL_NAMES.join(', ')}`), Policy, 'must be an object of policies'),
  ),
}, 'has a field the builtin section does not know (only tools)')
const McpFile = v.object({
  mcpServers: v.optional(v.record(ServerName, v.record(v.string(), v.unknown(), 'must be an object'), 'must be an object of servers'), {}),
  builtin: v.optional(BuiltinSection),
}, 'must be an object with mcpServers or builtin')

/** What an MCP_CONFIG file configures: MCP servers, and the policies of the built-in tools it turns on (`deny` ones left out). */
export interface ToolsConfig {
  servers: McpServerConfig[]
  builtin: ReadonlyMap<BuiltinToolName, Exclude<ToolPolicy, 'deny'>>
}

/**
 * The OAuth an HTTP server does: as its `oauth` section says, else signing in by an admin when the
 * server asks for it (a 401), unless it has an Authorization header of its own.
 */
function oauthOf(name: string, headers: Record<string, string>, section: v.InferOutput<typeof OAuthSection> | undefined): McpOAuthConfig | null {
  const ownAuthorization = Object.keys(headers).some((header) => header.toLowerCase() === 'authorization')
  if (section && ownAuthorization) throw new Error(`mcpServers.${name}: has both an Authorization header and an oauth section; keep one`)
  if (ownAuthorization) return null
  const { grant, client_id: clientId, client_secret: clientSecret, scope, issuer } = section ?? { grant: 'authorization_code' as const }
  if (grant === 'client_credentials') {
    if (!clientId || !clientSecret) throw new Error(`mcpServers.${name}.oauth: client_credentials needs client_id and client_secret`)
    return { grant, clientId, clientSecret, scope, issuer }
  }
  if (issuer) throw new Error(`mcpServers.${name}.oauth.issuer: only for client_credentials (the sign-in finds its authorization server)`)
  if (clientSecret && !clientId) throw new Error(`mcpServers.${name}.oauth: client_secret needs its client_id`)
  return { grant, clientId, clientSecret, scope }
}

/** The servers and built-in tools of an MCP_CONFIG file; throws an Error whose message says where it is wrong, quoting none of its values. */
export function readMcpConfig(path: string): ToolsConfig {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new Error((error as NodeJS.ErrnoException).code ? `cannot be read (${(error as NodeJS.ErrnoException).code})` : 'is not JSON')
  }
  const whereWrong = (issues: [v.BaseIssue<unknown>, ...v.BaseIssue<unknown>[]], prefix: string) => {
    const path = v.getDotPath(issues[0])
    return new Error(`${[prefix, path].filter(Boolean).join('.') || 'the file'}: ${issues[0].message}`)
  }
  const file = v.safeParse(McpFile, parsed)
  if (!file.success) throw whereWrong(file.issues, '')
  const builtin = new Map([...(file.output.builtin?.tools ?? [])].filter((entry): entry is [BuiltinToolName, Exclude<ToolPolicy, 'deny'>] => entry[1] !== 'deny'))
  const servers = Object.entries(file.output.mcpServers).map(([name, server]): McpServerConfig => {
    // A url makes it a Streamable HTTP server, a command a stdio one: each checked on its own, so a mistake is named.
    const schema = 'url' in server ? HttpServer : 'command' in server ? StdioServer : undefined
    if (!schema) throw new Error(`mcpServers.${name}: must have a url (Streamable HTTP) or a command (stdio)`)
    if (name === 'builtin') throw new Error('mcpServers.builtin: the name is taken by the built-in tools; name the server otherwise')
    const checked = v.safeParse(schema, server)
    if (!checked.success) throw whereWrong(checked.issues, `mcpServers.${name}`)
    const config = checked.output
    const base = { name, tools: config.tools, defaultPolicy: config.default }
    return 'url' in config
      ? { ...base, transport: 'http', url: config.url, headers: config.headers, oauth: oauthOf(name, config.headers, config.oauth) }
      : { ...base, transport: 'stdio', command: config.command, args: config.args, env: config.env }
  })
  return { servers, builtin }
}
