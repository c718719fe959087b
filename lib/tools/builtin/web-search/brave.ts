import { providerJson, resultsOf, type ProviderSettings, type SearchProvider } from './provider.ts'

/** Brave Search API's web search (`GET /res/v1/web/search`, the key in X-Subscription-Token). */
export const brave = ({ url, apiKey, userAgent }: ProviderSettings): SearchProvider => ({
  async search(query, count, signal) {
    const address = `${url || 'https://api.search.brave.com'}/res/v1/web/search?${new URLSearchParams({ q: query, count: String(count) })}`
    const answer = await providerJson('Brave Search', address, { headers: { accept: 'application/json', 'x-subscription-token': apiKey, 'user-agent': userAgent } }, signal) as { web?: { results?: unknown } }
    return resultsOf(answer?.web?.results, count, { title: 'title', url: 'url', snippet: 'description' })
  },
})
