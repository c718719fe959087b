import type { Logger } from '../../observability/log.ts'
import type { Config } from '../../shared/config.ts'
import type { BuiltinToolName, ToolPolicy } from '../../shared/mcp-config.ts'
import { fetchChecked, FetchRefused } from './checked-fetch.ts'
import { readPage } from './page-reader.ts'
import { PythonPool, type PythonOutcome } from './python/python-pool.ts'
import { searchProvider } from './web-search/index.ts'
import { SearchFailed, type SearchProvider, type WebResult } from './web-search/provider.ts'

/**
 * The tools the server runs itself (docs/builtin-tools.md), beside the MCP servers' and under the
 * same turn rules (lib/tools/tool-turn.ts): `web_search`, `fetch_url` and `run_python`, each on
 * when MCP_CONFIG's `builtin` section gives it a policy. The model sees them by their own names.
 */

/** The pseudo-server the built-in tools belong to in listings, metrics and logs. */
export const BUILTIN_SERVER = 'builtin'

/** The longest query, URL and program a call may send. */
const MAX_QUERY_CHARS = 400
const MAX_URL_CHARS = 2048
const MAX_CODE_CHARS = 100_000
/** The start of a fetched page given as its source's snippet. */
const PAGE_SNIPPET_CHARS = 300

export interface BuiltinTool {
  name: BuiltinToolName
  description: string
  input_schema: Record<string, unknown>
  policy: Exclude<ToolPolicy, 'deny'>
}

/** A call's result: its text, or web pages the turn numbers as sources and writes for the model (webSourcesText). */
export type BuiltinOutput =
  | { ok: boolean; content: string }
  | { ok: true; intro: string; pages: Array<WebResult & { text?: string }> }

const SCHEMAS = (maxResults: number): Record<BuiltinToolName, Omit<BuiltinTool, 'name' | 'policy'>> => ({
  web_search: {
    description: 'Search the web. Returns numbered results (title, URL, snippet); cite the ones you use by their number in brackets, such as [1]. Use fetch_url to read a result in full.',
    input_schema: {
      type: 'object',
      properties: {
        query: { type: 'string', minLength: 1, maxLength: MAX_QUERY_CHARS, description: 'What to search for.' },
        max_results: { type: 'integer', minimum: 1, maximum: maxResults, description: `How many results, at most ${maxResults}.` },
      },
      required: ['query'],
      additionalProperties: false,
    },
  },
  fetch_url: {
    description: 'Read a web page (HTML, PDF or text) by its http(s) URL. Returns its main text as Markdown, numbered as a source to cite in brackets.',
    input_schema: {
      type: 'object',
      properties: { url: { type: 'string', minLength: 1, maxLength: MAX_URL_CHARS, description: 'The page\'s http or https URL.' } },
      required: ['url'],
      additionalProperties: false,
    },
  },
  run_python: {
    description: 'Run a Python 3 program (standard library only; no network, no files but its own temporary ones; each call starts afresh). Returns what it prints and the value of its last expression.',
    input_schema: {
      type: 'object',
      properties: { code: { type: 'string', minLength: 1, maxLength: MAX_CODE_CHARS, description: 'The program.' } },
      required: ['code'],
      additionalProperties: false,
    },
  },
})

export class BuiltinTools {
  readonly tools: BuiltinTool[]
  private readonly config: Config
  private readonly provider: SearchProvider | undefined
  private readonly python: PythonPool | undefined
  private readonly userAgent: string
  private readonly log: Logger

  constructor(config: Config, log: Logger, version: string) {
    this.config = config
    this.log = log
    this.userAgent = `chat-ollama/${version}`
    const schemas = SCHEMAS(config.webSearchMaxResults)
    this.tools = [...config.builtinTools].map(([name, policy]) => ({ name, policy, ...schemas[name] }))
    if (config.builtinTools.has('web_search')) this.provider = searchProvider(config, this.userAgent)
    if (config.builtinTools.has('run_python')) this.python = new PythonPool({ size: config.pythonPoolSize, memoryBytes: config.pythonMemoryBytes, maxOutputBytes: config.toolResultMaxBytes, log })
  }

  /** `names` may be called soon (a turn offers them, the server starts): Python's interpreters start now, so that a call finds one ready. */
  prepare(names: Iterable<string>): void {
    if ([...names].includes('run_python')) this.python?.warm()
  }

  /**
   * Runs one call within `timeoutMs` (a TimeoutError past it); `turn` is the turn's stop. A
   * refusal or a failure is a result the model reads (ok false).
   */
  async run(tool: string, args: Record<string, unknown>, turn: AbortSignal, timeoutMs: number): Promise<BuiltinOutput> {
    const signal = AbortSignal.any([turn, AbortSignal.timeout(timeoutMs)])
    try {
      switch (tool) {
        case 'web_search':
          return await this.search(String(args.query), typeof args.max_results === 'number' ? args.max_results : this.config.webSearchMaxResults, signal)
        case 'fetch_url':
          return await this.fetchUrl(String(args.url), signal)
        case 'run_python':
          return pythonResult(await this.python!.run(String(args.code), turn, timeoutMs))
        default:
          return { ok: false, content: `No built-in tool named ${JSON.stringify(tool)}.` }
      }
    } catch (error) {
      if (signal.aborted || (error as Error).name === 'TimeoutError') throw error
      if (error instanceof FetchRefused || error instanceof SearchFailed) return { ok: false, content: error.message }
      this.log.warn('built-in tool failed', { tool, error: (error as Error).message })
      return { ok: false, content: `The call failed: ${(error as Error).message}` }
    }
  }

  private async search(query: string, count: number, signal: AbortSignal): Promise<BuiltinOutput> {
    const results = await this.provider!.search(query, Math.min(count, this.config.webSearchMaxResults), signal)
    if (results.length === 0) return { ok: true, content: `No web results for ${JSON.stringify(query)}.` }
    return { ok: true, intro: `Web results for ${JSON.stringify(query)}`, pages: results }
  }

  private async fetchUrl(url: string, signal: AbortSignal): Promise<BuiltinOutput> {
    const page = await fetchChecked(url, { allowedHosts: this.config.fetchAllowedHosts, maxBytes: this.config.fetchMaxBytes, userAgent: this.userAgent }, signal)
    const { title, text: whole } = await readPage(page, signal)
    // The model reads at most TOOL_RESULT_MAX_BYTES of it: a character is a byte at least, so no
    // more is kept, and cutting the result (capBytes) never encodes megabytes on the event loop.
    const text = whole.length > this.config.toolResultMaxBytes ? whole.slice(0, this.config.toolResultMaxBytes) : whole
    const body = page.cut ? `${text}\n\n[…the page is longer than FETCH_MAX_BYTES; only its start was read]` : text
    return { ok: true, intro: 'The page', pages: [{ title: title || new URL(page.url).hostname, url: page.url, snippet: text.slice(0, PAGE_SNIPPET_CHARS * 4).replace(/\s+/g, ' ').trim().slice(0, PAGE_SNIPPET_CHARS), text: body }] }
  }

  async close(): Promise<void> {
    await this.python?.close()
  }
}

/**
 * Web pages as the model reads them: each with its source number, to cite as [n]. How to cite
 * comes first: a long page is cut at TOOL_RESULT_MAX_BYTES, and the instruction must not be.
 */
export function webSourcesText(intro: string, pages: Array<WebResult & { n: number; text?: string }>): string {
  return [`${intro} (cite what you use by its number in brackets, such as [${pages[0]?.n ?? 1}])`, ...pages.map((page) => `[${page.n}] ${page.title}\nURL: ${page.url}\n${page.text ?? page.snippet}`)].join('\n\n')
}

function pythonResult({ stdout, stderr, value, error, cut }: PythonOutcome): BuiltinOutput {
  const parts = [
    stdout && `stdout:\n${stdout.trimEnd()}`,
    stderr && `stderr:\n${stderr.trimEnd()}`,
    value !== null && `value: ${value}`,
    error !== null && `error:\n${error}`,
    cut && '[output past TOOL_RESULT_MAX_BYTES was dropped]',
  ].filter(Boolean)
  return { ok: error === null, content: parts.join('\n\n') || '(no output)' }
}
