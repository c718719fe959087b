/**
 * The Responses API's built-in tool types run by the built-in tools (docs/builtin-tools.md), with
 * the official `openai` SDK as the client: `web_search` (and its preview names) through the
 * configured provider, with `web_search_call` items and `url_citation` annotations;
 * `code_interpreter` through run_python, with `code_interpreter_call` items. On both backends.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { fakeOllama, testServer } from './support/app.ts'
import { startFakeWeb } from './support/fake-web.ts'

async function setup(t: TestContext, builtin: Record<string, string>) {
  const fake = await fakeOllama(t)
  const web = await startFakeWeb(t, { '/notes.txt': { type: 'text/plain', body: 'The harbour opens at nine.' } })
  const config = join(mkdtempSync(join(tmpdir(), 'chat-ollama-builtin-')), 'mcp.json')
  writeFileSync(config, JSON.stringify({ builtin: { tools: builtin } }))
  const server = await testServer(t, fake, { MCP_CONFIG: config, WEB_SEARCH_URL: web.url, FETCH_ALLOWED_HOSTS: '127.0.0.1' })
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, web, client }
}

const ofType = (response: { output: Array<{ type: string }> }, type: string) => response.output.filter((item) => item.type === type) as any[]

async function streamed(stream: AsyncIterable<any>) {
  const lines: string[] = []
  let completed: any
  for await (const event of stream) {
    lines.push(`${event.sequence_number} ${event.type}${'item' in event ? ` ${event.item.type}` : ''}`)
    if (event.type === 'response.completed') completed = event.response
  }
  return { lines, completed }
}

test('web_search: the provider answers, a web_search_call item lists what it searched and found, and [n] in the answer becomes a url_citation; streamed and replayed alike', async (t) => {
  const { fake, web, client } = await setup(t, { web_search: 'auto', fetch_url: 'auto' })
  const input = `Who runs models? [[call web_search {"query":"ollama","max_results":2}]] [[call fetch_url {"url":"${web.url}/notes.txt"}]]`
  const response = await client.responses.create({ model: 'qwen3:8b', input, tools: [{ type: 'web_search' }] })
  assert.equal(response.status, 'completed')
  assert.deepEqual(response.output.map((item) => item.type), ['message', 'web_search_call', 'web_search_call', 'message'])
  assert.deepEqual(fake.chatRequests()[0]!.body.tools.map((tool: any) => tool.function.name), ['web_search', 'fetch_url'])
  const calls = ofType(response, 'web_search_call').sort((a, b) => a.action.type.localeCompare(b.action.type))
  assert.deepEqual(calls.map((call) => [call.status, call.action.type]), [['completed', 'open_page'], ['completed', 'search']])
  assert.equal(calls[0].action.url, `${web.url}/notes.txt`)
  assert.deepEqual([calls[1].action.query, calls[1].action.sources], ['ollama', [{ type: 'url', url: 'https://ollama.com/' }, { type: 'url', url: 'https://sqlite.org/' }]])
  assert.match(calls[1].id, /^ws_[0-9a-f]{32}$/)
  // The fake model repeats what the tools said, markers included: each is a citation of its page.
  const [answer] = ofType(response, 'message').slice(-1)
  const text: string = answer.content[0].text
  const annotations = answer.content[0].annotations
  const urls = annotations.map((annotation: any) => annotation.url)
  assert.ok(urls.includes('https://ollama.com/') && urls.includes('https://sqlite.org/') && urls.includes(`${web.url}/notes.txt`), JSON.stringify(annotations))
  for (const annotation of annotations) {
    assert.equal(annotation.type, 'url_citation')
    assert.match(text.slice(annotation.start_index, annotation.end_index), /^\[\d\]$/)
  }
  const ollama = annotations.find((annotation: any) => annotation.url === 'https://ollama.com/')
  assert.equal(ollama.title, 'Ollama runs models')

  const stream = await streamed(await client.responses.create({ model: 'qwen3:8b', input: '[[call web_search {"query":"sqlite"}]]', tools: [{ type: 'web_search_preview' }], stream: true }))
  const searchEvents = stream.lines.filter((line) => /web_search_call/.test(line)).map((line) => line.replace(/^\d+ /, ''))
  assert.deepEqual(searchEvents, [
    'response.output_item.added web_search_call',
    'response.web_search_call.in_progress',
    'response.web_search_call.searching',
    'response.web_search_call.completed',
    'response.output_item.done web_search_call',
  ])
  assert.ok(stream.lines.some((line) => line.includes('response.output_text.annotation.added')))
  const replay = await streamed(await client.responses.retrieve(stream.completed.id, { stream: true }))
  assert.deepEqual(replay.lines, stream.lines)
  // A follow-up reads the search as it happened.
  await client.responses.create({ model: 'qwen3:8b', previous_response_id: stream.completed.id, input: 'Thanks' })
  const history = fake.chatRequests().at(-1)!.body.messages
  const tool = history.find((message: any) => message.role === 'tool')
  assert.match(tool.content, /^Web results for "sqlite" \(cite what you use/)
  assert.deepEqual(history.find((message: any) => message.tool_calls)?.tool_calls.map((call: any) => call.function.name), ['web_search'])
})

test('code_interpreter: run_python runs the code; a code_interpreter_call item holds the code and its logs, with its events', async (t) => {
  const { client } = await setup(t, { run_python: 'auto' })
  const stream = await streamed(await client.responses.create({
    model: 'qwen3:8b',
    input: '[[call run_python {"code":"print(2 ** 10)"}]]',
    tools: [{ type: 'code_interpreter', container: { type: 'auto' } }],
    stream: true,
  }))
  const [call] = ofType(stream.completed, 'code_interpreter_call')
  assert.deepEqual([call.status, call.code, call.outputs], ['completed', 'print(2 ** 10)', [{ type: 'logs', logs: 'stdout:\n1024' }]])
  assert.match(call.container_id, /^cntr_/)
  assert.deepEqual(stream.lines.filter((line) => /code_interpreter/.test(line)).map((line) => line.replace(/^\d+ /, '')), [
    'response.output_item.added code_interpreter_call',
    'response.code_interpreter_call.in_progress',
    'response.code_interpreter_call_code.delta',
    'response.code_interpreter_call_code.done',
    'response.code_interpreter_call.interpreting',
    'response.code_interpreter_call.completed',
    'response.output_item.done code_interpreter_call',
  ])
  assert.deepEqual(stream.completed.tools, [{ type: 'code_interpreter', container: { type: 'auto' } }])
  // Sent back as input (a client that keeps its own history), the item is taken and not run again.
  const again = await client.responses.create({ model: 'qwen3:8b', input: [{ type: 'message', role: 'user', content: 'and?' }, call] })
  assert.equal(again.status, 'completed')
})

test('web_search and code_interpreter are 400 naming the type when not configured, or when MCP_CONFIG asks for approval of their tool', async (t) => {
  const { client } = await setup(t, { fetch_url: 'auto', run_python: 'ask' })
  const refused = async (tools: any[]) => {
    const error = await client.responses.create({ model: 'qwen3:8b', input: 'hi', tools }).then(() => null, (caught: unknown) => caught as InstanceType<typeof OpenAI.APIError>)
    assert.ok(error instanceof OpenAI.APIError, 'refused')
    assert.equal(error.status, 400)
    return error.message
  }
  assert.match(await refused([{ type: 'web_search' }]), /tools\[0\]\.type: web_search is not configured on this server/)
  assert.match(await refused([{ type: 'code_interpreter', container: { type: 'auto' } }]), /run_python asks for approval/)
  assert.match(await refused([{ type: 'image_generation' }]), /tools of type "image_generation" are not supported here/)
})
