import { defineFunction } from '../lib/handler.ts'

/**
 * GET /metrics: Prometheus' text exposition of the service's counters and Node's process metrics.
 * Open while AUTH is off (the local user is an admin); an admin key when AUTH is required.
 */
export default defineFunction({
  name: 'metrics',
  method: 'GET',
  path: '/metrics',
  access: 'admin',
  async handle(_request, { app }) {
    const { body, contentType } = app.metrics.exposition()
    return new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } })
  },
})
