import { VERSION } from '../lib/context.ts'
import { defineFunction } from '../lib/handler.ts'

/**
 * GET/HEAD /health. Ollama down is `degraded` with 200, so an orchestrator does not restart this
 * container because Ollama is restarting; only a database that cannot answer is a 503.
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
    return Response.json(
      { status, timestamp: new Date().toISOString(), version: VERSION, instance_id: app.config.instanceId, ...(instances === undefined ? {} : { instances }), store: app.database.kind, services: { database, ollama }, ollama_hosts: app.config.auth === 'off' ? hosts : { up: hosts.up, total: hosts.total } },
      { status: database === 'healthy' ? 200 : 503, headers: { 'cache-control': 'no-store' } },
    )
  },
})
