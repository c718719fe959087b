/**
 * The web as the built-in tools' tests see it, on loopback: a search service answering as
 * SearXNG's JSON API, Brave Search's web search and Tavily's search do (from their documentation),
 * pages to fetch, and a listener that counts every connection made to it (it proves a refused
 * fetch connected nowhere).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { gzipSync } from 'node:zlib'
import type { TestContext } from 'node:test'

export interface SeenSearch {
  provider: 'searxng' | 'brave' | 'tavily'
  query: string
  count: number | null
  headers: IncomingMessage['headers']
}

export interface FakeWeb {
  /** http://127.0.0.1:PORT */
  url: string
  port: number
  searches: SeenSearch[]
  /** Paths fetched, in order. */
  fetched: string[]
  /** Answer searches with this status instead (a key refused, a rate limit). */
  searchStatus: number
}

const RESULTS = [
  { title: 'Ollama <strong>runs</strong> models', url: 'https://ollama.com/', text: 'Get up and running with large language models &amp; more.' },
  { title: 'SQLite', url: 'https://sqlite.org/', text: 'SQLite is a C library.' },
  { title: 'Not a web page', url: 'ftp://files.example/', text: 'Left out: not http(s).' },
  { title: 'PostgreSQL', url: 'https://www.postgresql.org/', text: 'The world\'s most advanced open source database.' },
]

export const ARTICLE_HTML = `<!doctype html><html><head><title>The Tide Tables</title><script>document.title = 'hacked'; fetch('/beacon')</script><style>p{color:red}</style></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article><h1>The Tide Tables</h1>
<p>High water at the harbour comes twice a day, about fifty minutes later each day, because the Moon moves on in its orbit while the Earth turns.</p>
<p>Spring tides follow the new and the full Moon; neap tides follow the quarters. The keeper of the harbour writes the times in a ledger every morning.</p>
<p>The word <em>marmalade-tide</em> marks this page, so that a test can find it.</p>
<ul><li>First item</li><li>Second item</li></ul></article>
<footer>Copyright nobody</footer></body></html>`

async function bodyOf(request: IncomingMessage): Promise<string> {
  const parts: Buffer[] = []
  for await (const part of request) parts.push(part as Buffer)
  return Buffer.concat(parts).toString('utf8')
}

export async function startFakeWeb(t: TestContext, pages: Record<string, { type: string; body: string | Uint8Array; gzip?: boolean }> = {}): Promise<FakeWeb> {
  const web: FakeWeb = { url: '', port: 0, searches: [], fetched: [], searchStatus: 200 }
  const server: Server = createServer(async (request, response) => {
    const url = new URL(request.url!, 'http://x')
    const answer = (status: number, body: unknown) => response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    if (url.pathname === '/search' && request.method === 'GET') {
      web.searches.push({ provider: 'searxng', query: url.searchParams.get('q') ?? '', count: null, headers: request.headers })
      if (url.searchParams.get('format') !== 'json') return void response.writeHead(403).end('json format not enabled')
      if (web.searchStatus !== 200) return void answer(web.searchStatus, { error: 'refused' })
      return void answer(200, { query: url.searchParams.get('q'), number_of_results: RESULTS.length, results: RESULTS.map((result) => ({ title: result.title, url: result.url, content: result.text, engine: 'fake' })) })
    }
    if (url.pathname === '/res/v1/web/search') {
      web.searches.push({ provider: 'brave', query: url.searchParams.get('q') ?? '', count: Number(url.searchParams.get('count')), headers: request.headers })
      if (web.searchStatus !== 200) return void answer(web.searchStatus, { type: 'ErrorResponse' })
      if (!request.headers['x-subscription-token']) return void answer(401, { type: 'ErrorResponse' })
      return void answer(200, { type: 'search', web: { type: 'search', results: RESULTS.map((result) => ({ title: result.title, url: result.url, description: result.text })) } })
    }
    if (url.pathname === '/search' && request.method === 'POST') {
      const body = JSON.parse(await bodyOf(request)) as { query: string; max_results?: number }
      web.searches.push({ provider: 'tavily', query: body.query, count: body.max_results ?? null, headers: request.headers })
      if (web.searchStatus !== 200) return void answer(web.searchStatus, { detail: { error: 'refused' } })
      if (!/^Bearer \S+$/.test(request.headers.authorization ?? '')) return void answer(401, { detail: { error: 'Unauthorized' } })
      return void answer(200, { query: body.query, results: RESULTS.slice(0, body.max_results ?? 5).map((result, index) => ({ title: result.title, url: result.url, content: result.text, score: 0.9 - index / 10 })) })
    }
    web.fetched.push(url.pathname + url.search)
    if (url.pathname === '/redirect') return void response.writeHead(302, { location: url.searchParams.get('to')! }).end()
    if (url.pathname === '/loop') return void response.writeHead(301, { location: '/loop' }).end()
    const page = pages[url.pathname]
    if (!page) return void response.writeHead(404, { 'content-type': 'text/plain' }).end('not here')
    const body = page.gzip ? gzipSync(page.body) : page.body
    response.writeHead(200, { 'content-type': page.type, ...(page.gzip ? { 'content-encoding': 'gzip' } : {}) }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  web.port = (server.address() as { port: number }).port
  web.url = `http://127.0.0.1:${web.port}`
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return web
}

/** A listener on loopback (IPv4 and IPv6) that counts the connections made to it and answers none. */
export async function connectionCounter(t: TestContext): Promise<{ port: number; connections: () => number }> {
  let count = 0
  const server = createNetServer((socket) => {
    count++
    socket.destroy()
  })
  // `::` takes IPv4 too (dual stack), so 127.0.0.1, ::1 and ::ffff:127.0.0.1 all reach it.
  await new Promise<void>((resolve) => server.listen(0, '::', resolve))
  t.after(() => new Promise((resolve) => server.close(resolve)))
  return { port: (server.address() as { port: number }).port, connections: () => count }
}
