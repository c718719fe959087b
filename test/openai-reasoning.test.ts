/**
 * Reasoning models on the OpenAI surface (docs/openai.md "Reasoning"): `reasoning_effort` becomes
 * `think`, and the reasoning comes back under the names real clients read, checked with the
 * clients themselves: the official `openai` SDK, the AI SDK's openai-compatible provider, and
 * LangChain's ChatOpenAI, against the server over a socket and the fake Ollama.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import { generateText, streamText } from 'ai'
import OpenAI from 'openai'
import { fakeOllama, testServer } from './support/app.ts'

const THINKER = 'qwen3:8b'
const PLAIN = 'llama3.2'

async function reasoningServer(t: TestContext) {
  const fake = await fakeOllama(t, {
    models: ['llama3.2:latest', THINKER],
    capabilities: { [THINKER]: ['completion', 'tools', 'thinking'] },
    scenario: { thinking: ['Two and ', 'two.'], tokens: ['Four', '.'] },
  })
  const server = await testServer(t, fake)
  return { fake, baseURL: `${server.url}/v1` }
}
const lastThink = (fake: Awaited<ReturnType<typeof fakeOllama>>) => fake.chatRequests().at(-1)!.body.think

test('openai SDK: reasoning_effort becomes think; the reasoning is in the message and in deltas before the text, as reasoning and reasoning_content', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  const client = new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 })
  const answer = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: '2+2?' }], reasoning_effort: 'high' })
  assert.equal(lastThink(fake), 'high')
  const message = answer.choices[0]!.message as typeof answer.choices[0]['message'] & { reasoning?: string; reasoning_content?: string }
  assert.deepEqual([message.content, message.reasoning, message.reasoning_content], ['Four.', 'Two and two.', 'Two and two.'])

  const stream = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: '2+2?' }], reasoning_effort: 'low', stream: true })
  const deltas: Array<Record<string, unknown>> = []
  for await (const chunk of stream) if (chunk.choices[0]) deltas.push(chunk.choices[0].delta as Record<string, unknown>)
  assert.equal(lastThink(fake), 'low')
  const reasoning = deltas.filter((delta) => delta.reasoning)
  assert.equal(reasoning.map((delta) => delta.reasoning).join(''), 'Two and two.')
  assert.ok(reasoning.every((delta) => delta.reasoning_content === delta.reasoning && !delta.content))
  const firstText = deltas.findIndex((delta) => delta.content)
  assert.ok(deltas.findLastIndex((delta) => delta.reasoning) < firstText, 'the reasoning comes before the text')
  assert.equal(deltas.map((delta) => delta.content ?? '').join(''), 'Four.')

  for (const effort of ['none', 'minimal'] as const) {
    const off = await client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: '2+2?' }], reasoning_effort: effort })
    assert.equal(lastThink(fake), false)
    assert.equal('reasoning' in off.choices[0]!.message, false)
  }
  await assert.rejects(
    client.chat.completions.create({ model: PLAIN, messages: [{ role: 'user', content: 'hi' }], reasoning_effort: 'low' }),
    (error: any) => error instanceof OpenAI.BadRequestError && /thinking/.test(error.message),
  )
  await assert.rejects(
    client.chat.completions.create({ model: THINKER, messages: [{ role: 'user', content: 'hi' }], reasoning_effort: 'extreme' as 'low' }),
    (error: any) => error instanceof OpenAI.BadRequestError && /reasoning_effort/.test(error.message),
  )
})

test('reasoning sent back by a client goes to Ollama only within the turn in progress (a tool step), never from earlier turns', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  const client = new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 })
  const earlier = { role: 'assistant', content: 'Paris.', reasoning_content: 'The capital of France.' } as OpenAI.ChatCompletionAssistantMessageParam
  const calling = { role: 'assistant', content: '', reasoning: 'I need the weather.', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } }] } as OpenAI.ChatCompletionAssistantMessageParam
  await client.chat.completions.create({
    model: THINKER,
    messages: [
      { role: 'user', content: 'Capital of France?' }, earlier,
      { role: 'user', content: 'Weather there?' }, calling,
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ],
    tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  })
  const sent = fake.chatRequests().at(-1)!.body.messages
  assert.deepEqual(sent.map((message: any) => message.thinking ?? null), [null, null, null, 'I need the weather.', null])
})

test('AI SDK (openai-compatible provider): reasoningEffort reaches Ollama as think; generateText and streamText get the reasoning apart from the text', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  const provider = createOpenAICompatible({ name: 'chat-ollama', baseURL, apiKey: 'local' })
  const result = await generateText({ model: provider.chatModel(THINKER), prompt: '2+2?', providerOptions: { 'chat-ollama': { reasoningEffort: 'medium' } } })
  assert.equal(lastThink(fake), 'medium')
  assert.equal(result.text, 'Four.')
  assert.equal(result.reasoningText, 'Two and two.')

  const streamed = streamText({ model: provider.chatModel(THINKER), prompt: '2+2?' })
  const parts: Array<{ type: string; text?: string }> = []
  for await (const part of streamed.fullStream) parts.push(part as { type: string; text?: string })
  const reasoning = parts.filter((part) => part.type === 'reasoning-delta').map((part) => part.text).join('')
  const text = parts.filter((part) => part.type === 'text-delta').map((part) => part.text).join('')
  assert.deepEqual([reasoning, text], ['Two and two.', 'Four.'])
  assert.ok(parts.findIndex((part) => part.type === 'reasoning-delta') < parts.findIndex((part) => part.type === 'text-delta'))
})

test('LangChain ChatOpenAI: reasoning_effort reaches Ollama as think; invoke and stream carry the reasoning in reasoning_content', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  // ChatOpenAI sends its `reasoning` option for OpenAI's own reasoning models only: for a local one, as a model kwarg.
  const model = new ChatOpenAI({ model: THINKER, apiKey: 'local', configuration: { baseURL }, maxRetries: 0, modelKwargs: { reasoning_effort: 'low' } })
  const answer = await model.invoke('2+2?')
  assert.equal(lastThink(fake), 'low')
  assert.equal(answer.content, 'Four.')
  assert.equal(answer.additional_kwargs.reasoning_content, 'Two and two.')

  let reasoning = ''
  let text = ''
  for await (const chunk of await model.stream('2+2?')) {
    reasoning += (chunk.additional_kwargs.reasoning_content as string | undefined) ?? ''
    text += typeof chunk.content === 'string' ? chunk.content : ''
  }
  assert.deepEqual([reasoning, text], ['Two and two.', 'Four.'])
})

test('Responses: reasoning.effort becomes think; a reasoning item comes before the message, streamed as reasoning_text events, stored, and replayed as it was', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  const client = new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 })
  const answer = await client.responses.create({ model: THINKER, input: '2+2?', reasoning: { effort: 'low' } })
  assert.equal(lastThink(fake), 'low')
  assert.deepEqual(answer.output.map((item) => item.type), ['reasoning', 'message'])
  const [reasoning] = answer.output as OpenAI.Responses.ResponseReasoningItem[]
  assert.deepEqual(reasoning!.content, [{ type: 'reasoning_text', text: 'Two and two.' }])
  assert.equal(answer.output_text, 'Four.')
  assert.equal(answer.reasoning?.effort, 'low')
  assert.deepEqual((await client.responses.retrieve(answer.id)).output, answer.output, 'stored as it was answered')

  const stream = await client.responses.create({ model: THINKER, input: '2+2?', stream: true })
  const events: any[] = []
  for await (const event of stream) events.push(event)
  assert.deepEqual(events.map((event) => event.sequence_number), events.map((_, index) => index))
  const types = events.map((event) => event.type)
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added'])
  assert.equal(events.filter((event) => event.type === 'response.reasoning_text.delta').map((event) => event.delta).join(''), 'Two and two.')
  assert.ok(types.indexOf('response.reasoning_text.done') < types.indexOf('response.output_text.delta'), 'the reasoning is whole before the text begins')
  assert.equal(events.find((event) => event.type === 'response.reasoning_text.done').text, 'Two and two.')
  assert.deepEqual(events.filter((event) => event.type === 'response.output_item.done').map((event) => [event.output_index, event.item.type]), [[0, 'reasoning'], [1, 'message']])
  const completed = events.at(-1)
  assert.equal(completed.type, 'response.completed')
  // From the store, from any point: the same events under the same numbers.
  const replay = await client.responses.retrieve(completed.response.id, { stream: true, starting_after: 2 })
  const replayed: any[] = []
  for await (const event of replay) replayed.push(event)
  assert.deepEqual(replayed, events.slice(3))

  await assert.rejects(
    client.responses.create({ model: PLAIN, input: 'hi', reasoning: { effort: 'high' } }),
    (error: any) => error instanceof OpenAI.BadRequestError && /thinking/.test(error.message),
  )
})

test('Responses: a reasoning item sent back goes to Ollama with the calls it led to, within the turn; input items list it; earlier turns\' reasoning is not sent', async (t) => {
  const { fake, baseURL } = await reasoningServer(t)
  const client = new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 })
  const reasoning = (text: string) => ({ type: 'reasoning' as const, id: 'rs_client', summary: [], content: [{ type: 'reasoning_text' as const, text }] })
  const response = await client.responses.create({
    model: THINKER,
    input: [
      { role: 'user', content: 'Capital of France?' }, reasoning('Easy one.'), { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'Weather there?' }, reasoning('I need the weather tool.'),
      { type: 'function_call', call_id: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' },
      { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
    ] as OpenAI.Responses.ResponseInput,
    tools: [{ type: 'function', name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false }],
  })
  const sent = fake.chatRequests().at(-1)!.body.messages
  assert.deepEqual(sent.map((message: any) => [message.role, message.thinking ?? null]), [
    ['user', null], ['assistant', null], ['user', null], ['assistant', 'I need the weather tool.'], ['tool', null],
  ])
  const items = await client.responses.inputItems.list(response.id)
  const listed = items.data.filter((item) => item.type === 'reasoning') as unknown as Array<{ content: Array<{ text: string }> }>
  assert.deepEqual(listed.map((item) => item.content[0]!.text).sort(), ['Easy one.', 'I need the weather tool.'])
})

test('Responses in a conversation: the reply keeps its reasoning apart from its text', async (t) => {
  const { baseURL } = await reasoningServer(t)
  const client = new OpenAI({ baseURL, apiKey: 'local', maxRetries: 0 })
  const conversation = await client.conversations.create({})
  await client.responses.create({ model: THINKER, input: '2+2?', conversation: conversation.id })
  const sessionId = conversation.id.replace(/^conv_(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')
  const { messages } = await (await fetch(`${baseURL}/sessions/${sessionId}/messages`)).json() as { messages: Array<{ role: string, content: string, thinking?: string }> }
  assert.deepEqual(messages.map((message) => [message.role, message.content, message.thinking ?? null]), [['user', '2+2?', null], ['assistant', 'Four.', 'Two and two.']])
})
