import packageJson from '../package.json' with { type: 'json' }
import { AccessControl } from './access-control.ts'
import { AccessStore } from './access-store.ts'
import { loadConfig, ollamaHostsOf, readEnvironment, type Config } from './config.ts'
import { GenerationRegistry } from './generation-registry.ts'
import { createLogger, type Logger } from './log.ts'
import { OllamaPool } from './ollama-pool.ts'
import { ChatStore } from './store.ts'

export const VERSION: string = packageJson.version

/** What every handler may use besides its Request: built once per process (or FaaS cold start). */
export interface AppContext {
  config: Config
  store: ChatStore
  ollama: OllamaPool
  log: Logger
  generations: GenerationRegistry
  access: AccessControl
}

const contexts = new WeakSet<object>()

export function createAppContext(config: Config, parts: Partial<Omit<AppContext, 'config'>> = {}): AppContext {
  const log = parts.log ?? createLogger({ level: config.logLevel, format: config.logFormat })
  const store = parts.store ?? new ChatStore(config.dbPath)
  const context: AppContext = {
    config,
    log,
    store,
    ollama: parts.ollama ?? new OllamaPool({ hosts: ollamaHostsOf(config), headersTimeoutMs: config.ollamaTimeoutMs, probeIntervalMs: config.ollamaProbeIntervalMs, log }),
    generations: parts.generations ?? new GenerationRegistry(config.maxConcurrentChats),
    access: parts.access ?? new AccessControl(config, new AccessStore(store.db), log),
  }
  contexts.add(context)
  return context
}

export function isAppContext(value: unknown): value is AppContext {
  return typeof value === 'object' && value !== null && contexts.has(value)
}

let environmentContext: AppContext | undefined

/** The context a deployed function builds from its environment on its first request. */
export function contextFromEnvironment(): AppContext {
  environmentContext ??= createAppContext(loadConfig(readEnvironment()))
  return environmentContext
}
