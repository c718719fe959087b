import { createRequire } from 'node:module'

/**
 * node:http, loaded with require rather than import: the ES module facade of a built-in reads
 * every export, and one of node:http's loads undici, which costs ~19 ms of every start (a FaaS
 * cold start included). Through require the lazy export stays lazy.
 */
export const http = createRequire(import.meta.url)('node:http') as typeof import('node:http')
