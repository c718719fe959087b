/**
 * The OpenAI-compatible Chat Completions, with the official `openai` SDK as the client, against
 * the server over a socket and the fake Ollama.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { authServer, fakeOllama, storedRows, testServer, within } from './support/app.ts'
import type { FakeOllamaOptions } from './support/fake-ollama.ts'

async function openAI(t: TestContext, options: FakeOllamaOptions = {}, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, options)
  const server = await testServer(t, fake, env)
  // The SDK retries 409, 429 and 5xx by itself; the tests want each answer as it is.
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'any key while AUTH is off', maxRetries: 0 })
  return { fake, server, client }
}

const lastChat = (fake: Awaited<ReturnType<typeof fakeOllama>>) => fake.chatRequests().at(-1)!.body

test('models.list gives OpenAI\'s list of models', async (t) => {
  const { client } = await openAI(t, { models: ['llama3.2:latest', 'myns/coder:7b'] })
  const ids = []
  for await (const model of client.models.list()) {
    assert.equal(model.object, 'model')
    assert.equal(typeof model.created, 'number')
    ids.push([model.id, model.owned_by])
  }
  assert.deepEqual(ids, [['llama3.2:latest', 'library'], ['myns/coder:7b', 'myns']])
})

test('create, not streamed: the reply, finish_reason, usage; options mapped to Ollama\'s; nothing stored', async (t) => {
  const { client, fake, server } = await openAI(t, { scenario: { tokens: ['Hello', ' there'] } })
  const completion = await client.chat.completions.create({
    model: 'llama3.2',
    messages: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: '!' }] }],
    max_completion_tokens: 64,
    max_tokens: 999,
    temperature: 0.3,
    top_p: 0.9,
    seed: 7,
    stop: 'END',
  })
  assert.match(completion.id, /^chatcmpl-/)
  assert.equal(completion.object, 'chat.completion')
  assert.equal(completion.choices[0]!.message.content, 'Hello there')
  assert.equal(completion.choices[0]!.message.role, 'assistant')
  assert.equal(completion.choices[0]!.finish_reason, 'stop')
  assert.deepEqual(completion.usage, { prompt_tokens: lastChat(fake) && completion.usage!.prompt_tokens, completion_tokens: 2, total_tokens: completion.usage!.prompt_tokens + 2 })
  const sent = lastChat(fake)
  assert.deepEqual(sent.messages, [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }])
  assert.deepEqual(sent.options, { num_ctx: 8192, num_predict: 64, temperature: 0.3, top_p: 0.9, seed: 7, stop: ['END'] })
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM messages'))[0]!.n), 0, 'stateless: nothing stored')
  await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], max_tokens: 5 })
  assert.equal(lastChat(fake).options.num_predict, 5, 'max_tokens when max_completion_tokens is absent')
})

test('streamed: the first delta carries the role, the last a finish_reason, one id and created throughout, then [DONE]; usage only when asked', async (t) => {
  const { client, server } = await openAI(t, { scenario: { tokens: ['a', 'b', 'c'] } })
  const chunks = []
  for await (const chunk of await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'go' }], stream: true, stream_options: { include_usage: true } })) {
    chunks.push(chunk)
  }
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant')
  assert.equal(chunks.filter((chunk) => chunk.choices[0]?.delta.role).length, 1)
  assert.equal(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join(''), 'abc')
  const finish = chunks.at(-2)!
  assert.deepEqual([finish.choices[0]!.finish_reason, finish.choices[0]!.delta], ['stop', {}])
  const usage = chunks.at(-1)!
  assert.deepEqual(usage.choices, [])
  assert.equal(usage.usage!.completion_tokens, 3)
  assert.equal(new Set(chunks.map((chunk) => chunk.id)).size, 1)
  assert.equal(new Set(chunks.map((chunk) => chunk.created)).size, 1)

  const plain = []
  for await (const chunk of await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'go' }], stream: true })) plain.push(chunk)
  assert.ok(plain.every((chunk) => chunk.usage == null && chunk.choices.length === 1), 'no usage chunk unless asked')
  const raw = await (await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'raw' }], stream: true }) })).text()
  assert.ok(raw.endsWith('data: [DONE]\n\n'))
})

test('the chat.completions.stream() helper gives the final completion', async (t) => {
  const { client } = await openAI(t, { scenario: { tokens: ['Fine', ', thanks'] } })
  const stream = client.chat.completions.stream({ model: 'llama3.2', messages: [{ role: 'user', content: 'How are you?' }] })
  const deltas: string[] = []
  stream.on('content.delta', ({ delta }) => deltas.push(delta))
  const final = await stream.finalChatCompletion()
  assert.equal(final.choices[0]!.message.content, 'Fine, thanks')
  assert.deepEqual(deltas, ['Fine', ', thanks'])
})

const weatherTool = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}

for (const streamed of [false, true]) {
  test(`tools round trip${streamed ? ', streamed' : ''}: Ollama's call comes back with JSON-string arguments, and the tool's answer goes to Ollama as objects`, async (t) => {
    const { client, fake } = await openAI(t)
    fake.next({ tokens: [], toolCalls: [{ name: 'get_weather', arguments: { city: 'Tokyo' } }] })
    const ask = { model: 'llama3.2', messages: [{ role: 'user' as const, content: 'Weather in Tokyo?' }], tools: [weatherTool] }
    const first = streamed
      ? await client.chat.completions.stream(ask).finalChatCompletion()
      : await client.chat.completions.create(ask)
    const choice = first.choices[0]!
    assert.equal(choice.finish_reason, 'tool_calls')
    const call = choice.message.tool_calls![0]!
    assert.equal(call.type, 'function')
    assert.ok(call.type === 'function' && call.function.name === 'get_weather')
    assert.ok(call.type === 'function' && JSON.parse(call.function.arguments).city === 'Tokyo')
    assert.deepEqual(lastChat(fake).tools, [weatherTool])

    fake.next({ tokens: ['Sunny, 22C.'] })
    const answer = await client.chat.completions.create({
      ...ask,
      messages: [...ask.messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '22C sunny' }],
    })
    assert.equal(answer.choices[0]!.message.content, 'Sunny, 22C.')
    const sent = lastChat(fake).messages
    assert.deepEqual(sent[1].tool_calls, [{ function: { name: 'get_weather', arguments: { city: 'Tokyo' } } }])
    assert.deepEqual(sent[2], { role: 'tool', content: '22C sunny', tool_name: 'get_weather' })
  })
}

test('tool_choice "none" sends no tools; a choice that cannot be honoured is refused naming the param (forced calls: openai-forced-tools.test.ts)', async (t) => {
  const { client, fake } = await openAI(t)
  await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice: 'none' })
  assert.equal(lastChat(fake).tools, undefined)
  for (const tool_choice of [{ type: 'function', function: { name: 'not_offered' } }, { type: 'custom', custom: { name: 'get_weather' } }] as const) {
    await assert.rejects(client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], tools: [weatherTool], tool_choice }), (error: any) => {
      assert.ok(error instanceof OpenAI.BadRequestError)
      assert.equal(error.param, 'tool_choice')
      return true
    })
  }
})

test('response_format json_schema and json_object become Ollama\'s format', async (t) => {
  const { client, fake } = await openAI(t, { scenario: { tokens: ['{"answer":', '42}'] } })
  const schema = { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'], additionalProperties: false }
  const completion = await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'answer?' }], response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } } })
  assert.deepEqual(JSON.parse(completion.choices[0]!.message.content!), { answer: 42 })
  assert.deepEqual(lastChat(fake).format, schema)
  await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'json' }], response_format: { type: 'json_object' } })
  assert.equal(lastChat(fake).format, 'json')
})

test('each error class: 400 with param, 401, 404, 429, 5xx, each in OpenAI\'s error shape', async (t) => {
  const { client, fake } = await openAI(t)
  const rejectsAs = (promise: Promise<unknown>, type: any, check: (error: any) => void = () => {}) =>
    assert.rejects(promise, (error: any) => {
      assert.ok(error instanceof type, `${error?.constructor?.name}: ${error?.message}`)
      check(error)
      return true
    })
  await rejectsAs(client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], n: 2 }), OpenAI.BadRequestError, (error) => {
    assert.equal(error.param, 'n')
    assert.equal(error.type, 'invalid_request_error')
  })
  await rejectsAs(client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], logit_bias: { 50256: -100 } }), OpenAI.BadRequestError, (error) => assert.equal(error.param, 'logit_bias'))
  await rejectsAs(client.chat.completions.create({ model: 'llama3.2', messages: [] }), OpenAI.BadRequestError, (error) => assert.equal(error.param, 'messages'))
  await rejectsAs(client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }), OpenAI.BadRequestError, (error) => assert.equal(error.param, 'messages[0].content[0].image_url.url'))
  await rejectsAs(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), OpenAI.NotFoundError, (error) => assert.equal(error.type, 'not_found_error'))
  fake.next({ status: 500, errorMessage: 'llama runner process has terminated' })
  await rejectsAs(client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] }), OpenAI.InternalServerError, (error) => assert.match(error.message, /llama runner/))

  const guarded = await authServer(t, fake, { RATE_LIMIT: '2/min' })
  const keyed = await guarded.userWithKey('sdk')
  await rejectsAs(new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: 'cko_wrong', maxRetries: 0 }).chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] }), OpenAI.AuthenticationError)
  const sdk = new OpenAI({ baseURL: `${guarded.url}/v1`, apiKey: keyed.key, maxRetries: 0 })
  await sdk.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] })
  await sdk.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] })
  await rejectsAs(sdk.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] }), OpenAI.RateLimitError, (error) => assert.equal(error.type, 'rate_limit_error'))
})

test('a client that leaves a stream aborts Ollama\'s request; a failure mid-stream is an error event, not [DONE]', async (t) => {
  const { client, fake, server } = await openAI(t, { scenario: { tokens: ['one ', 'two ', 'three '], paced: true } })
  fake.release(1)
  const stream = await client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'long' }], stream: true })
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) break
  }
  await fake.waitFor(() => fake.chatRequests()[0]!.abortedAt !== null)
  await fake.waitFor(() => server.app.generations.size === 0)

  fake.next({ tokens: ['partial ', 'more'], failAfterTokens: 1, paced: false })
  const raw = await within(10_000, 'the failed stream', fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: true }) }).then((response) => response.text()))
  assert.match(raw, /data: \{"error":\{"message":"Ollama failed during the reply: an error was encountered while running the model","type":"api_error"/)
  assert.doesNotMatch(raw, /\[DONE\]/)
})
