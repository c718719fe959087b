import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { webAssets } from '../lib/http/web-assets.ts'

// Only this origin's script, style and connections: text from a model or a user never runs.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** GET /, /assets/* and /favicon.ico: the chat page, with ETags and long-lived caching of hashed assets. */
export default defineFunction({
  name: 'web',
  method: 'GET',
  path: '/assets/*',
  alsoAt: ['/', '/favicon.ico'],
  access: 'public',
  async handle(request, { url }) {
    const asset = webAssets().get(url.pathname)
    if (!asset) {
      throw new HttpProblem(404, 'not_found', url.pathname === '/' ? 'The page is not built: run npm run build.' : `Nothing is at ${url.pathname}.`)
    }
    const headers: Record<string, string> = {
      'content-type': asset.contentType,
      etag: asset.etag,
      'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    }
    if (!asset.immutable) headers['content-security-policy'] = CONTENT_SECURITY_POLICY
    if (request.headers.get('if-none-match') === asset.etag) return new Response(null, { status: 304, headers })
    return new Response(asset.body, { headers })
  },
})
