import { providerJson, resultsOf, type ProviderSettings, type SearchProvider } from './provider.ts'

/** Tavily's search API (`POST /search`, the key as a bearer token). */
export const tavily = ({ url, apiKey, userAgent }: ProviderSettings): SearchProvider => ({
  async search(query, count, signal) {
    const answer = await providerJson('Tavily', `${url || 'https://api.tavily.com'}/search`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${apiKey}`, 'user-agent': userAgent },
      body: JSON.stringify({ query, max_results: count, search_depth: 'basic' }),
    }, signal) as { results?: unknown }
    return resultsOf(answer?.results, count, { title: 'title', url: 'url', snippet: 'content' })
  },
})
