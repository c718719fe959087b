import { defineFunction } from '../lib/handler.ts'

/**
 * GET /v1/tools: the tools of the MCP servers MCP_CONFIG names that a user may use (docs/tools.md): each as `SERVER__TOOL` with its description, input schema and policy; `deny` tools
 * left out; never a header, an env value or a URL.
 */
export default defineFunction({
  name: 'tools-list',
  method: 'GET',
  path: '/v1/tools',
  async handle(_request, { app }) {
    return Response.json({ servers: await app.tools.list() })
  },
})
