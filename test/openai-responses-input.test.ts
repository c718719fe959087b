/**
 * What the Responses API takes as input, as the Vercel AI SDK and LangChain send it: function
 * tools and their calls, references to stored items, and bounds on every list and text. The
 * official `openai` SDK is the client, against the server over a socket and the fake Ollama.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { authServer, fakeOllama, json, storedRows, testServer } from './support/app.ts'
import type { FakeOllamaOptions } from './support/fake-ollama.ts'

async function openAI(t: TestContext, options: FakeOllamaOptions = {}, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, options)
  const server = await testServer(t, fake, env)
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, server, client }
}

const weather = { type: 'function' as const, name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }
const lastChat = (fake: Awaited<ReturnType<typeof fakeOllama>>) => fake.chatRequests().at(-1)!.body

test('function tools: offered to Ollama; its call comes back as a function_call item (streamed with arguments events); the output goes back with previous_response_id', async (t) => {
  const { client, fake } = await openAI(t)
  fake.next({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] })
  const asked = await client.responses.create({ model: 'llama3.2', input: 'Weather in Paris?', tools: [weather] })
  assert.deepEqual(lastChat(fake).tools, [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: weather.parameters } }])
  assert.equal(asked.status, 'completed')
  assert.equal(asked.output.length, 1, 'calls only: no empty message item')
  const call = asked.output[0] as OpenAI.Responses.ResponseFunctionToolCall
  assert.equal(call.type, 'function_call')
  assert.equal(call.name, 'get_weather')
  assert.equal(call.arguments, '{"city":"Paris"}')
  assert.match(call.call_id, /^call_/)
  assert.deepEqual(asked.tools.map((tool: any) => tool.name), ['get_weather'])
  assert.equal((await client.responses.retrieve(asked.id)).output[0]!.type, 'function_call', 'stored')

  fake.next({ tokens: ['It is sunny in Paris.'] })
  const answered = await client.responses.create({
    model: 'llama3.2',
    previous_response_id: asked.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"sky":"clear"}' }],
    tools: [weather],
  })
  assert.equal(answered.output_text, 'It is sunny in Paris.')
  assert.deepEqual(lastChat(fake).messages, [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: '{"sky":"clear"}', tool_name: 'get_weather' },
  ])

  fake.next({ tokens: ['Checking. '], toolCalls: [{ name: 'get_weather', arguments: { city: 'Lyon' } }, { name: 'get_weather', arguments: { city: 'Nice' } }] })
  const events: any[] = []
  for await (const event of await client.responses.create({ model: 'llama3.2', input: 'Lyon and Nice?', tools: [weather], stream: true })) events.push(event)
  assert.deepEqual(events.map((event) => event.sequence_number), events.map((_, index) => index))
  const done = events.filter((event) => event.type === 'response.function_call_arguments.done')
  assert.deepEqual(done.map((event) => [event.output_index, event.arguments]), [[1, '{"city":"Lyon"}'], [2, '{"city":"Nice"}']])
  assert.deepEqual(events.filter((event) => event.type === 'response.function_call_arguments.delta').map((event) => event.delta), ['{"city":"Lyon"}', '{"city":"Nice"}'])
  const completed = events.at(-1)
  assert.equal(completed.type, 'response.completed')
  assert.deepEqual(completed.response.output.map((item: any) => item.type), ['message', 'function_call', 'function_call'])
  const streamedId = completed.response.id
  const replayed: any[] = []
  for await (const event of await client.responses.retrieve(streamedId, { stream: true })) replayed.push(event)
  assert.deepEqual(replayed, events, 'a replay from the store carries the same events')
})

test('a whole history as LangChain sends it (function_call and function_call_output items), and tool_choice "none" sends no tools', async (t) => {
  const { client, fake } = await openAI(t)
  fake.next({ tokens: ['Sunny.'] })
  await client.responses.create({
    model: 'llama3.2',
    tools: [weather],
    tool_choice: 'none',
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'clear' },
    ],
  })
  assert.equal(lastChat(fake).tools, undefined)
  assert.deepEqual(lastChat(fake).messages.map((message: any) => [message.role, message.tool_name ?? message.tool_calls?.[0].function.name ?? '']), [['user', ''], ['assistant', 'get_weather'], ['tool', 'get_weather']])
  await assert.rejects(
    client.responses.create({ model: 'llama3.2', tools: [weather], tool_choice: { type: 'mcp', server_label: 'none' }, input: 'x' }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'tool_choice',
  )
})

test('item_reference items (the AI SDK\'s earlier turns when store is on) are resolved to the caller\'s stored items; another user\'s or a missing one is the same 400', async (t) => {
  const fake = await fakeOllama(t)
  const server = await authServer(t, fake, { RATE_LIMIT: '0' })
  const sdk = (key: string) => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: key, maxRetries: 0 })
  const alice = sdk((await server.userWithKey('alice')).key)
  const bob = sdk((await server.userWithKey('bob')).key)

  fake.next({ tokens: ['Paris.'] })
  const first = await alice.responses.create({ model: 'llama3.2', input: 'Capital of France?' })
  const messageId = first.output[0]!.id!
  fake.next({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] })
  const calling = await alice.responses.create({ model: 'llama3.2', input: 'Weather there?', tools: [weather] })
  const call = calling.output[0] as OpenAI.Responses.ResponseFunctionToolCall & { id: string }

  fake.next({ tokens: ['Clear skies.'] })
  const next = await alice.responses.create({
    model: 'llama3.2',
    tools: [weather],
    input: [
      { role: 'user', content: 'Capital of France?' },
      { type: 'item_reference', id: messageId },
      { role: 'user', content: 'Weather there?' },
      { type: 'item_reference', id: call.id },
      { type: 'function_call_output', call_id: call.call_id, output: 'clear' },
    ],
  })
  assert.equal(next.status, 'completed')
  assert.deepEqual(lastChat(fake).messages, [
    { role: 'user', content: 'Capital of France?' },
    { role: 'assistant', content: 'Paris.' },
    { role: 'user', content: 'Weather there?' },
    { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
    { role: 'tool', content: 'clear', tool_name: 'get_weather' },
  ])
  const inputItems = await alice.responses.inputItems.list(next.id)
  assert.deepEqual(inputItems.data.map((item: any) => item.type).reverse(), ['message', 'message', 'message', 'function_call', 'function_call_output'])

  const requests = fake.chatRequests().length
  const refusals: string[] = []
  for (const [client, id] of [[bob, messageId], [alice, 'msg_00000000000000000000000000000000'], [bob, call.id]] as const) {
    await assert.rejects(client.responses.create({ model: 'llama3.2', input: [{ type: 'item_reference', id }] }), (error: any) => {
      assert.ok(error instanceof OpenAI.BadRequestError)
      assert.equal(error.param, 'input[0].id')
      refusals.push(error.message.replace(id, '<id>'))
      return true
    })
  }
  assert.equal(new Set(refusals).size, 1, 'another user\'s item answers exactly as a missing one')
  assert.equal(fake.chatRequests().length, requests)
})

test('bounded input: MAX_INPUT_ITEMS items, MAX_MESSAGE_CHARS on every stored text (input, instructions, conversation items, a session\'s system prompt); 400 naming the field, nothing stored', async (t) => {
  const { client, fake, server } = await openAI(t, {}, { MAX_INPUT_ITEMS: '5', MAX_MESSAGE_CHARS: '100' })
  const long = 'x'.repeat(101)
  const refusedAs = async (promise: Promise<unknown>, param: string) =>
    assert.rejects(promise, (error: any) => {
      assert.ok(error instanceof OpenAI.BadRequestError, String(error))
      assert.equal(error.param, param)
      return true
    })
  await refusedAs(client.responses.create({ model: 'llama3.2', input: Array.from({ length: 6 }, () => ({ role: 'user' as const, content: 'hi' })) }), 'input')
  await refusedAs(client.responses.create({ model: 'llama3.2', input: long }), 'input')
  await refusedAs(client.responses.create({ model: 'llama3.2', input: [{ role: 'user', content: 'ok' }, { role: 'user', content: [{ type: 'input_text', text: long }] }] }), 'input[1].content')
  await refusedAs(client.responses.create({ model: 'llama3.2', input: 'ok', instructions: long }), 'instructions')
  await refusedAs(client.responses.create({ model: 'llama3.2', input: 'ok', instructions: 'lone \ud800' }), 'instructions')
  await refusedAs(client.responses.create({ model: 'llama3.2', input: [{ type: 'function_call_output', call_id: 'c', output: long }] }), 'input[0].output')
  await refusedAs(client.chat.completions.create({ model: 'llama3.2', messages: Array.from({ length: 6 }, () => ({ role: 'user' as const, content: 'hi' })) }), 'messages')
  await refusedAs(client.conversations.create({ items: [{ type: 'message', role: 'user', content: long }] }), 'items[0].content')

  const session = await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ system: long }) })
  assert.equal(session.status, 400)
  assert.equal((await json(session)).errors[0].path, 'system')

  const [counts] = await storedRows(server.app, 'SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM responses) AS responses')
  assert.deepEqual([Number(counts.sessions), Number(counts.responses)], [0, 0])
  assert.equal(fake.chatRequests().length, 0)
})

test('a wrong input item is named with its field, not "Expected (string | Array)"', async (t) => {
  const { client } = await openAI(t)
  const wrong = async (input: unknown, param: string, message: RegExp) =>
    assert.rejects(client.responses.create({ model: 'llama3.2', input: input as any }), (error: any) => {
      assert.ok(error instanceof OpenAI.BadRequestError)
      assert.equal(error.param, param)
      assert.match(error.message, message)
      return true
    })
  await wrong([{ role: 'user', content: 'ok' }, { role: 'robot', content: 'x' }], 'input[1].role', /input\[1\]\.role: must be user, system, developer or assistant/)
  await wrong([{ role: 'user', content: 42 }], 'input[0].content', /input\[0\]\.content: must be a string or an array of content parts/)
  await wrong([{ type: 'computer_call', status: 'completed' }], 'input[0].type', /"computer_call" are not supported here/)
  await wrong([{ type: 'reasoning', content: [{ type: 'reasoning_text', text: 42 }] }], 'input[0].content[0].text', /string/)
  await wrong([{ type: 'function_call', call_id: 'c', name: 'f', arguments: 'not json' }], 'input[0].arguments', /JSON object/)
  await wrong([], 'input', /non-empty/)
  await wrong([{ role: 'user', content: [{ type: 'input_text', text: 'lone \ud800 surrogate' }] }], 'input[0].content', /well-formed Unicode/)
})

test('tools cannot be used in a conversation (it keeps messages only): 400, nothing stored', async (t) => {
  const { client, server } = await openAI(t)
  const conversation = await client.conversations.create({})
  await assert.rejects(
    client.responses.create({ model: 'llama3.2', input: 'x', conversation: conversation.id, tools: [weather] }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'conversation',
  )
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM messages'))[0]!.n), 0)
})
