/**
 * A small MCP server over stdio, made with the official SDK, for the tests: it says on stderr
 * which environment variables it got and its pid (the server logs its stderr), and offers `echo`,
 * `whoami` (whose answer holds its secret) and `crash` (which exits while called).
 * With CRASH_AFTER_START set it exits once started, as a broken server would.
 */
import { McpServer } from '@modelcontextprotocol/server'
import { StdioServerTransport } from '@modelcontextprotocol/server/stdio'
import { z } from 'zod'

process.stderr.write(`env ${Object.keys(process.env).sort().join(',')}\n`)
process.stderr.write(`pid ${process.pid}\n`)
if (process.env.CRASH_AFTER_START) process.exit(3)

const server = new McpServer({ name: 'test-stdio', version: '1.0.0' })
server.registerTool('echo', { description: 'Says back what it is given.', inputSchema: z.object({ text: z.string() }) }, async ({ text }) => ({
  content: [{ type: 'text', text }],
}))
// A careless tool: its answer holds the secret it was configured with.
server.registerTool('whoami', { description: 'Says which token it uses.', inputSchema: z.object({}) }, async () => ({
  content: [{ type: 'text', text: `token=${process.env.SECRET_TOKEN}` }],
}))
// Dies in the middle of a call, as a crashing server would.
server.registerTool('crash', { description: 'Exits while called.', inputSchema: z.object({}) }, async () => process.exit(4))
await server.connect(new StdioServerTransport())
