import type { Config } from '../../../shared/config.ts'
import { brave } from './brave.ts'
import type { ProviderSettings, SearchProvider } from './provider.ts'
import { searxng } from './searxng.ts'
import { tavily } from './tavily.ts'

/** Every provider WEB_SEARCH_PROVIDER may name: a new one is a file beside these and a line here. */
const PROVIDERS: Record<Config['webSearchProvider'], (settings: ProviderSettings) => SearchProvider> = { searxng, brave, tavily }

const KEYS: Record<Config['webSearchProvider'], (config: Config) => string> = {
  searxng: () => '',
  brave: (config) => config.braveApiKey,
  tavily: (config) => config.tavilyApiKey,
}

export function searchProvider(config: Config, userAgent: string): SearchProvider {
  return PROVIDERS[config.webSearchProvider]({ url: config.webSearchUrl, apiKey: KEYS[config.webSearchProvider](config), userAgent })
}
