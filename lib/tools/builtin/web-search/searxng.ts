import { providerJson, resultsOf, type ProviderSettings, type SearchProvider } from './provider.ts'

/** A SearXNG instance's JSON API (`/search?format=json`; its settings.yml must list `json` in search.formats). */
export const searxng = ({ url, userAgent }: ProviderSettings): SearchProvider => ({
  async search(query, count, signal) {
    const address = `${url}/search?${new URLSearchParams({ q: query, format: 'json', safesearch: '1' })}`
    const answer = await providerJson('SearXNG', address, { headers: { accept: 'application/json', 'user-agent': userAgent } }, signal) as { results?: unknown }
    return resultsOf(answer?.results, count, { title: 'title', url: 'url', snippet: 'content' })
  },
})
