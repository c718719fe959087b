/**
 * A tool_choice that forces a call ("required", or a named function), emulated with Ollama's
 * `format` (docs/openai.md): checked with the clients that send it, the official `openai` SDK,
 * LangChain's withStructuredOutput and the AI SDK's toolChoice, against the server over a socket
 * and the fake Ollama (which answers a format with JSON that follows it).
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import { generateText, jsonSchema, tool } from 'ai'
import OpenAI from 'openai'
import { z } from 'zod'
import { fakeOllama, testServer } from './support/app.ts'

async function forcedServer(t: TestContext) {
  const fake = await fakeOllama(t)
  const server = await testServer(t, fake)
  const baseURL = `${server.url}/v1`
  return { fake, baseURL, client: new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 }) }
}
const lastChat = (fake: Awaited<ReturnType<typeof fakeOllama>>) => fake.chatRequests().at(-1)!.body

const weatherParameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }
const weatherTool = { type: 'function' as const, function: { name: 'get_weather', description: 'Weather in a city', parameters: weatherParameters } }
const timeTool = { type: 'function' as const, function: { name: 'get_time', description: 'Time in a zone', parameters: { type: 'object', properties: { zone: { type: 'string' } }, required: ['zone'] } } }
const ask = [{ role: 'user' as const, content: 'Tokyo' }]

for (const streamed of [false, true]) {
  test(`Chat Completions, a named function${streamed ? ', streamed' : ''}: Ollama is asked for its parameters as JSON, with no tools, and the JSON comes back as the call`, async (t) => {
    const { client, fake } = await forcedServer(t)
    const request = { model: 'llama3.2', messages: ask, tools: [weatherTool, timeTool], tool_choice: { type: 'function' as const, function: { name: 'get_weather' } } }
    const completion = streamed ? await client.chat.completions.stream(request).finalChatCompletion() : await client.chat.completions.create(request)
    const choice = completion.choices[0]!
    assert.equal(choice.finish_reason, 'tool_calls')
    assert.equal(choice.message.content, null)
    const call = choice.message.tool_calls![0]!
    assert.ok(call.type === 'function')
    assert.deepEqual([call.function.name, JSON.parse(call.function.arguments)], ['get_weather', { city: 'Tokyo' }])
    assert.match(call.id, /^call_/)
    const sent = lastChat(fake)
    assert.deepEqual(sent.format, weatherParameters)
    assert.equal(sent.tools, undefined)
    assert.equal(sent.messages.at(-1).role, 'system')
    assert.match(sent.messages.at(-1).content, /get_weather: Weather in a city/)
  })
}

test('Chat Completions, "required" with several tools: one of them by name with its arguments; with one tool, that tool', async (t) => {
  const { client, fake } = await forcedServer(t)
  const several = await client.chat.completions.create({ model: 'llama3.2', messages: ask, tools: [timeTool, weatherTool], tool_choice: 'required' })
  const call = several.choices[0]!.message.tool_calls![0]!
  assert.ok(call.type === 'function')
  assert.deepEqual([call.function.name, JSON.parse(call.function.arguments)], ['get_time', { zone: 'Tokyo' }])
  assert.deepEqual(lastChat(fake).format.anyOf.map((option: any) => option.properties.name.const), ['get_time', 'get_weather'])

  const one = await client.chat.completions.create({ model: 'llama3.2', messages: ask, tools: [weatherTool], tool_choice: 'required' })
  assert.equal(one.choices[0]!.finish_reason, 'tool_calls')
  assert.deepEqual(lastChat(fake).format, weatherParameters)
})

test('Chat Completions: a forced call cut short by max_tokens is text with finish_reason length; an answer that is no call is an error; bad choices are 400 naming the param', async (t) => {
  const { client, fake } = await forcedServer(t)
  const forced = { model: 'llama3.2', messages: ask, tools: [weatherTool], tool_choice: 'required' as const }
  const cut = await client.chat.completions.create({ ...forced, max_tokens: 2 })
  assert.equal(cut.choices[0]!.finish_reason, 'length')
  assert.equal(cut.choices[0]!.message.tool_calls, undefined)
  assert.equal(cut.choices[0]!.message.content, '{"city":', 'max_tokens 2 is 8 characters in the fake')

  fake.next({ tokens: ['Not JSON at all'] })
  await assert.rejects(client.chat.completions.create(forced), (error: any) => error instanceof OpenAI.InternalServerError && /did not answer with a call/.test(error.message))

  const refused = async (body: Record<string, unknown>, param: string) => assert.rejects(
    client.chat.completions.create({ model: 'llama3.2', messages: ask, ...body } as any),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === param,
  )
  const before = fake.chatRequests().length
  await refused({ tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'launch_rockets' } } }, 'tool_choice')
  await refused({ tool_choice: 'required' }, 'tool_choice')
  await refused({ tools: [weatherTool], tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [] } } }, 'tool_choice')
  await refused({ tools: [weatherTool], tool_choice: 'required', response_format: { type: 'json_object' } }, 'response_format')
  assert.equal(fake.chatRequests().length, before, 'nothing refused reached Ollama')
})

test('LangChain: withStructuredOutput(schema, {method: "functionCalling"}) gets its object', async (t) => {
  const { baseURL, fake } = await forcedServer(t)
  const model = new ChatOpenAI({ model: 'llama3.2', apiKey: 'local', configuration: { baseURL }, maxRetries: 0 })
  const structured = model.withStructuredOutput(z.object({ city: z.string().describe('The city') }).describe('A city someone asked about'), { name: 'city_of', method: 'functionCalling' })
  assert.deepEqual(await structured.invoke('Paris'), { city: 'Paris' })
  assert.equal(lastChat(fake).format.properties.city.type, 'string')
})

test('AI SDK (openai-compatible provider): toolChoice {type: "tool"} makes the call', async (t) => {
  const { baseURL, fake } = await forcedServer(t)
  const provider = createOpenAICompatible({ name: 'chat-ollama', baseURL, apiKey: 'local' })
  const result = await generateText({
    model: provider.chatModel('llama3.2'),
    prompt: 'Lima',
    tools: {
      get_weather: tool({ description: 'Weather in a city', inputSchema: jsonSchema<{ city: string }>(weatherParameters as any) }),
      get_time: tool({ description: 'Time in a zone', inputSchema: jsonSchema<{ zone: string }>(timeTool.function.parameters as any) }),
    },
    toolChoice: { type: 'tool', toolName: 'get_weather' },
    maxRetries: 0,
  })
  assert.deepEqual(result.toolCalls.map((call) => [call.toolName, call.input]), [['get_weather', { city: 'Lima' }]])
  assert.equal(result.finishReason, 'tool-calls')
  assert.deepEqual(lastChat(fake).format, weatherParameters)
})

test('Responses: a named function is answered with a function_call item, streamed, stored and replayed; the choice is echoed; "required" too', async (t) => {
  const { client, fake } = await forcedServer(t)
  const weather = { type: 'function' as const, name: 'get_weather', description: 'Weather in a city', parameters: weatherParameters, strict: false }
  const time = { type: 'function' as const, name: 'get_time', description: 'Time in a zone', parameters: timeTool.function.parameters, strict: false }
  const events: any[] = []
  for await (const event of await client.responses.create({ model: 'llama3.2', input: 'Oslo', tools: [time, weather], tool_choice: { type: 'function', name: 'get_weather' }, stream: true })) events.push(event)
  const completed = events.at(-1)
  assert.equal(completed.type, 'response.completed')
  assert.deepEqual(completed.response.tool_choice, { type: 'function', name: 'get_weather' })
  assert.deepEqual(completed.response.output.map((item: any) => [item.type, item.name, item.arguments && JSON.parse(item.arguments)]), [['function_call', 'get_weather', { city: 'Oslo' }]])
  assert.ok(!events.some((event) => event.type === 'response.output_text.delta'), 'the JSON is not streamed as text')
  assert.deepEqual(lastChat(fake).format, weatherParameters)
  assert.equal(lastChat(fake).tools, undefined)
  const stored = await client.responses.retrieve(completed.response.id)
  assert.deepEqual(stored.output, completed.response.output)
  const replayed: any[] = []
  for await (const event of await client.responses.retrieve(completed.response.id, { stream: true })) replayed.push(event)
  assert.deepEqual(replayed, events)

  // The call is answered like any function call, along the chain.
  const call = stored.output[0] as OpenAI.Responses.ResponseFunctionToolCall
  fake.next({ tokens: ['Cold.'] })
  const answered = await client.responses.create({ model: 'llama3.2', previous_response_id: stored.id, tools: [time, weather], input: [{ type: 'function_call_output', call_id: call.call_id, output: '-3C' }] })
  assert.equal(answered.output_text, 'Cold.')
  assert.deepEqual(lastChat(fake).messages.slice(-2).map((message: any) => message.role), ['assistant', 'tool'])

  const required = await client.responses.create({ model: 'llama3.2', input: 'UTC', tools: [time, weather], tool_choice: 'required' })
  assert.deepEqual(required.output.map((item: any) => [item.type, item.name]), [['function_call', 'get_time']])
  assert.equal(required.tool_choice, 'required')
  await assert.rejects(
    client.responses.create({ model: 'llama3.2', input: 'x', tools: [weather], tool_choice: { type: 'function', name: 'nope' } }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'tool_choice',
  )
})
