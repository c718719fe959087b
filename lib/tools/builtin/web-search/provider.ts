/**
 * Web search behind one interface (docs/builtin-tools.md "Web search"): a provider is one file
 * exporting a SearchProvider factory, listed in index.ts. Keys go in headers only, never in a URL,
 * a log line or a result.
 */

export interface WebResult {
  title: string
  url: string
  snippet: string
}

export interface ProviderSettings {
  /** The provider's base URL (WEB_SEARCH_URL), or '' for its public one. */
  url: string
  /** Its API key, if it takes one. */
  apiKey: string
  userAgent: string
}

export interface SearchProvider {
  search(query: string, count: number, signal: AbortSignal): Promise<WebResult[]>
}

/** A provider that failed: the message names the provider and what went wrong, never the key. */
export class SearchFailed extends Error {
  override name = 'SearchFailed'
}

/** The most of a provider's answer that is read. */
const MAX_ANSWER_BYTES = 1024 ** 2
const SNIPPET_CHARS = 600
const TITLE_CHARS = 200

/** The JSON a provider answered, read up to MAX_ANSWER_BYTES; an HTTP error says its status. */
export async function providerJson(provider: string, url: string, init: RequestInit, signal: AbortSignal): Promise<unknown> {
  let response: Response
  try {
    response = await fetch(url, { ...init, signal, redirect: 'error' })
  } catch (error) {
    if (signal.aborted) throw signal.reason
    throw new SearchFailed(`${provider} could not be reached (${(error as Error & { cause?: { code?: string } }).cause?.code ?? (error as Error).message}).`)
  }
  if (!response.ok) {
    await response.body?.cancel()
    throw new SearchFailed(`${provider} answered HTTP ${response.status}${response.status === 401 || response.status === 403 ? ' (check its API key)' : response.status === 429 ? ' (its rate limit)' : ''}.`)
  }
  const parts: Uint8Array[] = []
  let size = 0
  for await (const part of response.body ?? []) {
    size += part.byteLength
    if (size > MAX_ANSWER_BYTES) {
      await response.body?.cancel()
      throw new SearchFailed(`${provider} answered more than ${MAX_ANSWER_BYTES} bytes.`)
    }
    parts.push(part)
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch {
    throw new SearchFailed(`${provider} did not answer JSON.`)
  }
}

const text = (value: unknown): string => (typeof value === 'string' ? value : '')
/** Providers mark the words found (<strong>, <b>) and escape entities: plain text for the model. */
const plain = (value: unknown, max: number): string => text(value)
  .replace(/<[^>]{0,200}>/g, '')
  .replace(/&(amp|lt|gt|quot|#39|#x27|nbsp);/g, (_, entity: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", nbsp: ' ' })[entity]!)
  .replace(/\s+/g, ' ')
  .trim()
  .slice(0, max)

/** The results of a provider's list: http(s) URLs only, each once, at most `count`. */
export function resultsOf(items: unknown, count: number, fields: { title: string; url: string; snippet: string }): WebResult[] {
  if (!Array.isArray(items)) return []
  const seen = new Set<string>()
  const results: WebResult[] = []
  for (const item of items) {
    if (typeof item !== 'object' || item === null) continue
    const record = item as Record<string, unknown>
    const url = text(record[fields.url])
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol) || seen.has(url)) continue
    seen.add(url)
    results.push({ title: plain(record[fields.title], TITLE_CHARS) || new URL(url).hostname, url, snippet: plain(record[fields.snippet], SNIPPET_CHARS) })
    if (results.length === count) break
  }
  return results
}
