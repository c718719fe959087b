import { VERSION } from '../lib/context.ts'
import { defineFunction } from '../lib/handler.ts'
import type { AppContext } from '../lib/context.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/** EMBED_MODEL's state: ready, or why documents cannot be embedded (`/api/show`, cached per model). */
async function embedModelHealth(app: AppContext): Promise<{ name: string; ready: boolean | null; detail: string | null }> {
  const name = app.config.embedModel
  try {
    const capabilities = await app.ollama.capabilities(name)
    if (capabilities === null || capabilities.includes('embedding')) return { name, ready: true, detail: null }
    return { name, ready: false, detail: `${name} is not an embedding model (it has ${capabilities.join(', ') || 'no capabilities'}): uploads are refused` }
  } catch (error) {
    if (error instanceof HttpProblem && error.status === 404) return { name, ready: false, detail: `${name} is not installed: ollama pull ${name}` }
    return { name, ready: null, detail: error instanceof HttpProblem ? error.detail : 'Ollama did not say' }
  }
}

/**
 * GET/HEAD /health. Ollama down is `degraded` with 200, so an orchestrator does not restart this
 * container because Ollama is restarting; only a database that cannot answer is a 503. `embed_model`
 * says whether EMBED_MODEL is installed and embeds (documents need it); it never changes the status.
 */
export default defineFunction({
  name: 'health',
  method: 'GET',
  path: '/health',
  access: 'public',
  async handle(_request, { app }) {
    let database: 'healthy' | 'unhealthy' = 'healthy'
    // Several instances on PostgreSQL: how many hold a lease now, this one included.
    let instances: number | undefined
    try {
      await app.database.ping()
      instances = await app.database.cluster?.liveInstances()
    } catch (error) {
      app.log.error('database health check failed', { error })
      database = 'unhealthy'
    }
    const hosts = await app.ollama.health()
    // Healthy while one host answers; `ollama_hosts` says how many do, and (for an open server
    // only: /health needs no key) each one's address and state.
    const ollama = hosts.up > 0 ? 'healthy' : 'unhealthy'
    const status = database === 'unhealthy' ? 'unhealthy' : ollama === 'unhealthy' ? 'degraded' : 'healthy'
    // Documents need EMBED_MODEL (docs/documents.md): whether it is there and embeds, asked only of an Ollama that answers.
    const embedModel = ollama === 'healthy' ? await embedModelHealth(app) : { name: app.config.embedModel, ready: null, detail: 'Ollama is unreachable' }
    return Response.json(
      { status, timestamp: new Date().toISOString(), version: VERSION, instance_id: app.config.instanceId, ...(instances === undefined ? {} : { instances }), store: app.database.kind, services: { database, ollama }, embed_model: embedModel, ollama_hosts: app.config.auth === 'off' ? hosts : { up: hosts.up, total: hosts.total } },
      { status: database === 'healthy' ? 200 : 503, headers: { 'cache-control': 'no-store' } },
    )
  },
})
