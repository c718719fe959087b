import type { AppContext } from '../context.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { BuiltinToolName, McpServerConfig } from '../shared/mcp-config.ts'
import type { ToolCall } from '../store/chat-store.ts'
import type { InputItem, ServerToolItem, StoredResponse } from '../store/response-store.ts'
import { TOOL_SEPARATOR, type OfferedTool } from '../tools/mcp-hub.ts'
import { BUILTIN_SERVER } from '../tools/builtin/builtin-tools.ts'
import { tooManyTools, toolLimits, ToolTurn } from '../tools/tool-turn.ts'
import { serverToolItem } from './response-run.ts'
import { newId, unsupported } from './wire.ts'

/**
 * The `mcp` tool type of OpenAI's Responses API (docs/tools.md), on the servers of MCP_CONFIG
 * only: a request names a configured server by its label, never a URL or credentials of its own.
 */

type ToolParam = Record<string, unknown> & { type: string }

/** A response's MCP tools, checked: what the model is offered, and each server's listing. */
export interface ResponseMcp {
  turn: ToolTurn
  labels: Map<string, string>
  listings: ServerToolItem[]
  /** The tools as the response echoes them. */
  echo: ToolParam[]
}

const namesOf = (value: unknown, path: string): string[] | null => {
  if (value == null) return null
  const names = Array.isArray(value) ? value : typeof value === 'object' ? (value as { tool_names?: unknown }).tool_names : undefined
  if (!Array.isArray(names) || names.length > 128 || !names.every((name) => typeof name === 'string' && name.length <= 200)) {
    throw unsupported(path, `${path} must be a list of tool names (or {"tool_names": [...]}).`)
  }
  return names as string[]
}

/**
 * Which tools of a server need the client's approval: `require_approval` as OpenAI takes it
 * (`always`, the default; `never`; or `{never: {tool_names}}`), and never less than MCP_CONFIG's
 * policy asks (an `ask` tool always asks).
 */
function approvalRule(value: unknown, path: string): (tool: string) => boolean {
  if (value === undefined || value === null || value === 'always') return () => true
  if (value === 'never') return () => false
  if (typeof value === 'object' && !Array.isArray(value)) {
    const never = namesOf((value as { never?: unknown }).never, `${path}.never`) ?? []
    const always = namesOf((value as { always?: unknown }).always, `${path}.always`)
    return (tool) => (always ? always.includes(tool) || !never.includes(tool) : !never.includes(tool))
  }
  throw unsupported(path, `${path} must be "always", "never" or {"never": {"tool_names": [...]}}.`)
}

/**
 * OpenAI's built-in tool types this server runs with its built-in tools (docs/builtin-tools.md):
 * the tools each offers the model (the first is required, the others come along when configured).
 */
export const BUILTIN_TYPES: Record<string, { tools: BuiltinToolName[]; echo: (tool: ToolParam) => ToolParam }> = {
  web_search: { tools: ['web_search', 'fetch_url'], echo: (tool) => ({ type: tool.type, search_context_size: tool.search_context_size ?? 'medium', user_location: tool.user_location ?? null }) },
  code_interpreter: { tools: ['run_python'], echo: (tool) => ({ type: 'code_interpreter', container: tool.container ?? { type: 'auto' } }) },
}
for (const alias of ['web_search_preview', 'web_search_2025_08_26', 'web_search_preview_2025_03_11']) BUILTIN_TYPES[alias] = BUILTIN_TYPES.web_search!

/** The built-in tools a response's `web_search` and `code_interpreter` tools offer; 400 naming a type this server has not configured. */
function responseBuiltins(app: AppContext, tools: ToolParam[]): { offered: OfferedTool[]; echo: ToolParam[] } {
  const offered: OfferedTool[] = []
  const echo: ToolParam[] = []
  const available = new Map((app.tools.builtin?.tools ?? []).map((tool) => [tool.name as string, tool]))
  for (const [index, tool] of tools.entries()) {
    const type = Object.hasOwn(BUILTIN_TYPES, tool.type) ? BUILTIN_TYPES[tool.type]! : undefined
    if (!type) continue
    const at = `tools[${index}]`
    const [required] = type.tools
    const builtin = available.get(required!)
    if (!builtin) throw unsupported(`${at}.type`, `${at}.type: ${tool.type} is not configured on this server: the builtin section of its MCP_CONFIG turns ${required} on (docs/builtin-tools.md).`)
    if (tool.filters != null) throw unsupported(`${at}.filters`, `${at}.filters: domain filters are not supported; the configured search provider answers as it is set up.`)
    for (const name of type.tools) {
      const chosen = available.get(name)
      if (!chosen || offered.some((already) => already.name === name)) continue
      // OpenAI's types have no approval: a tool MCP_CONFIG has ask for is not run without one.
      if (chosen.policy === 'ask') throw unsupported(`${at}.type`, `${at}.type: ${name} asks for approval (its MCP_CONFIG policy), which the ${tool.type} tool type has no way to give; use POST /v1/chat, or set its policy to auto.`)
      offered.push({ name, description: chosen.description, input_schema: chosen.input_schema, policy: 'auto', server: BUILTIN_SERVER, tool: name })
    }
    echo.push(type.echo(tool))
  }
  app.tools.builtin?.prepare(offered.map((tool) => tool.name))
  return { offered, echo }
}

/**
 * The request's server tools: its `mcp` tools checked against MCP_CONFIG, and its `web_search`
 * and `code_interpreter` tools (the built-in tools); null when it has none; 400 naming what is wrong.
 */
export async function responseMcp(app: AppContext, model: string, tools: ToolParam[]): Promise<ResponseMcp | null> {
  const asked = tools.flatMap((tool, index) => (tool.type === 'mcp' ? [{ tool, index }] : []))
  const builtins = responseBuiltins(app, tools)
  if (asked.length === 0 && builtins.offered.length === 0) return null
  const labels = new Map<string, string>()
  const rules = new Map<string, { allowed: string[] | null; needsApproval: (tool: string) => boolean }>()
  const echo: ToolParam[] = []
  for (const { tool, index } of asked) {
    const at = `tools[${index}]`
    const label = tool.server_label
    const server = typeof label === 'string' ? app.config.mcpServers.find((candidate) => candidate.name === label) : undefined
    if (!server) {
      throw unsupported(`${at}.server_label`, `${at}.server_label: ${JSON.stringify(String(label ?? '')).slice(0, 80)} is not an MCP server of this server's MCP_CONFIG (GET /v1/tools lists them).`)
    }
    if (labels.has(server.name)) throw unsupported(`${at}.server_label`, `${at}.server_label: ${server.name} is named twice.`)
    if (tool.server_url != null && !sameUrl(server, tool.server_url)) {
      throw unsupported(`${at}.server_url`, `${at}.server_url: this server connects only to the MCP servers its MCP_CONFIG names; leave server_url out, or give ${server.name}'s own.`)
    }
    for (const field of ['headers', 'authorization', 'connector_id']) {
      if (tool[field] != null) throw unsupported(`${at}.${field}`, `${at}.${field}: credentials of MCP servers come from MCP_CONFIG, not from a request.`)
    }
    labels.set(server.name, server.name)
    rules.set(server.name, { allowed: namesOf(tool.allowed_tools, `${at}.allowed_tools`), needsApproval: approvalRule(tool.require_approval, `${at}.require_approval`) })
    echo.push({ type: 'mcp', server_label: server.name, ...(tool.server_url != null ? { server_url: tool.server_url } : {}), allowed_tools: tool.allowed_tools ?? null, require_approval: tool.require_approval ?? 'always' })
  }
  await app.ollama.requireCapability(model, 'tools', 'call tools')
  const listings = asked.length ? await app.tools.list() : []
  const offered: OfferedTool[] = []
  const items: ServerToolItem[] = []
  for (const [serverName, rule] of rules) {
    const listing = listings.find((candidate) => candidate.name === serverName)!
    if (listing.status !== 'ok') throw new HttpProblem(503, 'tools_unavailable', `The MCP server ${serverName} cannot be reached now.`, { headers: { 'retry-after': '5' } })
    const bare = (name: string) => name.slice(serverName.length + TOOL_SEPARATOR.length)
    const known = new Set(listing.tools.map((tool) => bare(tool.name)))
    const unknown = rule.allowed?.find((name) => !known.has(name))
    if (unknown !== undefined) throw unsupported('tools', `tools: ${serverName} offers no tool ${JSON.stringify(unknown.slice(0, 80))} (or it is denied).`)
    const chosen = listing.tools.filter((tool) => rule.allowed === null || rule.allowed.includes(bare(tool.name)))
    for (const tool of chosen) {
      // The stricter of the request's rule and the server's policy.
      offered.push({ ...tool, server: serverName, tool: bare(tool.name), policy: tool.policy === 'ask' || rule.needsApproval(bare(tool.name)) ? 'ask' : 'auto' })
    }
    items.push({ at: 0, type: 'mcp_list_tools', id: newId('mcpl'), server_label: serverName, tools: chosen.map((tool) => ({ name: bare(tool.name), description: tool.description, input_schema: tool.input_schema, annotations: null })), error: null })
  }
  offered.push(...builtins.offered)
  tooManyTools(offered.length, app.config.maxToolsPerTurn, 'tools')
  const turn = new ToolTurn(app.tools, offered, toolLimits(app, { showsImages: false }), app.metrics, app.log, { selection: offered.map((tool) => tool.name), options: {} })
  return { turn, labels, listings: items, echo: [...echo, ...builtins.echo] }
}

function sameUrl(server: McpServerConfig, given: unknown): boolean {
  if (server.transport !== 'http' || typeof given !== 'string') return false
  try {
    return new URL(given).href === new URL(server.url).href
  } catch {
    return false
  }
}

/**
 * The `mcp_approval_response` items of the input, each answering a request of an earlier response
 * of the chain not answered yet (else 400 naming it): approved calls run now, denied ones get a
 * denial. Their `mcp_call` items (this response's first), and the results as the model reads them.
 */
export async function answeredApprovals(mcp: ResponseMcp | null, chain: StoredResponse[], input: InputItem[], signal: AbortSignal): Promise<{ items: ServerToolItem[]; outputs: InputItem[] }> {
  const answers = input.flatMap((item, index) => (item.type === 'mcp_approval_response' ? [{ item, index }] : []))
  if (answers.length === 0) return { items: [], outputs: [] }
  if (!mcp) throw unsupported('input', 'input: an mcp_approval_response needs the mcp tool of its server in tools.')
  const requests = new Map(chain.flatMap((response) => response.mcp_items.flatMap((item) => (item.type === 'mcp_approval_request' ? [[item.id, item] as const] : []))))
  const answered = new Set(chain.flatMap((response) => response.input.flatMap((item) => (item.type === 'mcp_approval_response' ? [item.approval_request_id] : []))))
  const calls: Array<ToolCall & { approvalId: string }> = []
  const decisions = new Map<string, 'approved' | 'denied'>()
  for (const { item, index } of answers) {
    const request = requests.get(item.approval_request_id)
    const at = `input[${index}].approval_request_id`
    if (!request) throw unsupported(at, `${at}: no approval request '${item.approval_request_id.slice(0, 80)}' is in this response's previous_response_id chain.`)
    if (answered.has(request.id) || decisions.has(request.call_id)) throw unsupported(at, `${at}: the request '${request.id}' was answered already.`)
    calls.push({ call_id: request.call_id, name: `${request.server_label}${TOOL_SEPARATOR}${request.name}`, arguments: JSON.parse(request.arguments) as Record<string, unknown>, approvalId: request.id })
    decisions.set(request.call_id, item.approve ? 'approved' : 'denied')
  }
  const { results } = await mcp.turn.run(calls, signal, { call() {}, result() {}, approval() {} }, decisions)
  const items = calls.map((call, index) => serverToolItem(mcp, call, results[index]!, call.approvalId, 0))
  const outputs: InputItem[] = calls.map((call, index) => ({ type: 'function_call_output', id: newId('fco'), call_id: call.call_id, output: results[index]!.content }))
  return { items, outputs }
}
