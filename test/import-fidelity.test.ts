/**
 * Imports that keep everything (docs/api.md "Export and import"): a conversation that grew since it
 * was imported is brought up to date; ChatGPT's tool traffic, citations, unfinished replies and
 * images the export lacks; Open WebUI's bare chats, tool calls and output items; and refusals that
 * say what is wrong. The files are made here from the shapes those apps export. On both backends.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import importFile from '../functions/import.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionExport from '../functions/session-export.ts'
import sessionMessages from '../functions/session-messages.ts'
import { chatRequest, fakeOllama, json, rowCounts, storedRows, testApp, toRequest } from './support/app.ts'
import type { AppContext } from '../lib/context.ts'

const importing = (app: AppContext, body: unknown) => importFile.fetch(toRequest('POST /v1/import', body), app)
const messagesOf = async (app: AppContext, sessionId: string, branch = 'active') =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages?branch=${branch}`), app))).messages

interface Node {
  id: string
  /** The node it follows: the one listed before it unless named (null: a first message). */
  parent?: string | null
  role: 'system' | 'user' | 'assistant' | 'tool'
  parts?: unknown[]
  content?: Record<string, unknown>
  recipient?: string
  name?: string
  status?: string
  metadata?: Record<string, unknown>
}

/** A `conversations.json` entry as ChatGPT exports one: a `mapping` of nodes under a root, each message's time 10 s after the one listed before. */
function chatGpt(conversationId: string, title: string, nodes: Node[], current = nodes.at(-1)!.id) {
  const mapping: Record<string, { id: string; parent: string | null; children: string[]; message: unknown }> = { root: { id: 'root', parent: null, children: [], message: null } }
  let previous = 'root'
  let time = 1_700_000_000
  for (const node of nodes) {
    const parent = node.parent === undefined ? previous : (node.parent ?? 'root')
    time += 10
    mapping[node.id] = {
      id: node.id,
      parent,
      children: [],
      message: {
        id: node.id,
        author: { role: node.role, name: node.name ?? null, metadata: {} },
        create_time: time,
        content: node.content ?? { content_type: 'text', parts: node.parts ?? [] },
        status: node.status ?? 'finished_successfully',
        end_turn: true,
        recipient: node.recipient ?? 'all',
        metadata: node.metadata ?? {},
      },
    }
    mapping[parent]!.children.push(node.id)
    previous = node.id
  }
  return { id: conversationId, conversation_id: conversationId, title, create_time: 1_700_000_000, update_time: time, current_node: current, default_model_slug: 'gpt-4o-mini', mapping }
}

const say = (id: string, role: 'user' | 'assistant', text: string, extra: Partial<Node> = {}): Node => ({ id, role, parts: [text], ...(role === 'assistant' ? { metadata: { model_slug: 'gpt-4o' } } : {}), ...extra })

test('a conversation that grew since its import is brought up to date: the messages it lacks are added in their place, branches too; again, nothing is added', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const porto = [say('q1', 'user', 'Plan a trip to Porto'), say('a1', 'assistant', 'Start at Ribeira.')]
  const hello = [say('h1', 'user', 'Hello'), say('h2', 'assistant', 'Hi!')]
  const first = await json(await importing(app, [chatGpt('porto', 'Porto', porto), chatGpt('hello', 'Hello', hello)]))
  assert.equal(first.imported.length, 2)
  const [portoId, helloId] = first.imported.map((entry: any) => entry.session_id)

  // The next month's export: Porto went on and was edited at its start; Hello is as it was; Lisbon is new.
  const portoGrown = [...porto, say('q2', 'user', 'And food?'), say('a2', 'assistant', 'Try a francesinha.'), say('qb', 'user', 'Plan a trip to Braga', { parent: null }), say('ab', 'assistant', 'See the cathedral.')]
  const nextMonth = [chatGpt('porto', 'Porto', portoGrown, 'a2'), chatGpt('hello', 'Hello', hello), chatGpt('lisbon', 'Lisbon', [say('l1', 'user', 'Lisbon?'), say('l2', 'assistant', 'Yes.')])]
  const second = await json(await importing(app, nextMonth))
  assert.deepEqual(second.updated, [{ session_id: portoId, title: 'Porto', messages_added: 4 }])
  assert.deepEqual(second.skipped, [{ index: 1, reason: 'duplicate' }])
  assert.deepEqual(second.imported.map((entry: any) => entry.title), ['Lisbon'])
  const path = await messagesOf(app, portoId)
  assert.deepEqual(path.map((message: any) => message.content), ['Plan a trip to Porto', 'Start at Ribeira.', 'And food?', 'Try a francesinha.'], 'the active path follows the file, which went on from it')
  assert.equal(path[0].sibling_ids.length, 2, 'the edit is a branch beside the first question')
  assert.equal(path[3].created_at, new Date(1_700_000_040_000).toISOString())
  const counts = await rowCounts(app)
  assert.deepEqual(counts, { sessions: 3, messages: 10 })

  const again = await json(await importing(app, nextMonth))
  assert.deepEqual(again, { imported: [], updated: [], skipped: [0, 1, 2].map((index) => ({ index, reason: 'duplicate' })) }, 'a second import of the same file adds nothing')
  assert.deepEqual(await rowCounts(app), counts)

  // A chat continued here keeps its own path; what the file adds after the common part is a branch.
  await json(await chat.fetch(chatRequest({ message: 'More?', session_id: helloId, stream: false }), app))
  const third = await json(await importing(app, [chatGpt('hello', 'Hello', [...hello, say('h3', 'user', 'Bye'), say('h4', 'assistant', 'Bye!')])]))
  assert.deepEqual(third.updated, [{ session_id: helloId, title: 'Hello', messages_added: 2 }])
  const helloPath = await messagesOf(app, helloId)
  assert.deepEqual(helloPath.map((message: any) => message.content), ['Hello', 'Hi!', 'More?', 'You said: More?'])
  assert.equal(helloPath[2].sibling_ids.length, 2, '"Bye" is beside the question asked here')

  // A conversation imported before the server recorded which message each one is: matched by its text.
  await storedRows(app, 'DELETE FROM imported_messages WHERE session_id = ?', portoId)
  const fourth = await json(await importing(app, [chatGpt('porto', 'Porto', [...portoGrown, say('q3', 'user', 'Weather?', { parent: 'a2' }), say('a3', 'assistant', 'Sunny.')], 'a3')]))
  assert.deepEqual(fourth.updated, [{ session_id: portoId, title: 'Porto', messages_added: 2 }])
  assert.deepEqual((await messagesOf(app, portoId)).map((message: any) => message.content).slice(-2), ['Weather?', 'Sunny.'])
  assert.deepEqual((await json(await importing(app, [chatGpt('porto', 'Porto', [...portoGrown, say('q3', 'user', 'Weather?', { parent: 'a2' }), say('a3', 'assistant', 'Sunny.')], 'a3')]))).skipped, [{ index: 0, reason: 'duplicate' }])

  assert.equal((await messagesOf(app, portoId, 'all')).length, 8, 'nothing matched by its text was added again')
})

/** A ChatGPT conversation with tools: Python, browsing with citations, an image made and an image sent, and a reply cut short. */
function toolConversation() {
  const cited = 'A new tram line opened【12†source】 and the metro grew \ue200cite\ue202turn0search1\ue201.【99†source】'
  const start = cited.indexOf('【12')
  return chatGpt('tools', 'Tools', [
    { id: 'sys', role: 'system', parts: [''], metadata: { is_visually_hidden_from_conversation: true } },
    say('u1', 'user', 'What is sin(pi/2)?'),
    { id: 'c1', role: 'assistant', recipient: 'python', content: { content_type: 'code', language: 'python', text: 'import math\nprint(math.sin(math.pi / 2))' }, metadata: { model_slug: 'gpt-4o' } },
    { id: 'r1', role: 'tool', name: 'python', content: { content_type: 'execution_output', text: '1.0' } },
    say('a1', 'assistant', 'It is 1.0.'),
    say('u2', 'user', 'Any news from Lisbon?'),
    { id: 'c2', role: 'assistant', recipient: 'browser', parts: ['search("Lisbon news")'] },
    { id: 'r2', role: 'tool', name: 'browser', content: { content_type: 'tether_browsing_display', result: '# 【0†Tram line opens†news.example】' } },
    say('a2', 'assistant', cited, {
      metadata: {
        model_slug: 'gpt-4o',
        citations: [{ start_ix: start, end_ix: start + '【12†source】'.length, citation_format_type: 'tether_og', metadata: { type: 'webpage', title: 'Tram news', url: 'https://news.example/tram', text: 'The new line runs along the river.' } }],
        content_references: [{ matched_text: '\ue200cite\ue202turn0search1\ue201', type: 'grouped_webpages', items: [{ title: 'Metro', url: 'https://news.example/metro', attribution: 'news.example' }] }],
      },
    }),
    { id: 'u3', role: 'user', content: { content_type: 'multimodal_text', parts: [{ content_type: 'image_asset_pointer', asset_pointer: 'file-service://file-abc' }, 'Draw one like this'] } },
    { id: 'c3', role: 'assistant', recipient: 'dalle.text2im', parts: ['{"prompt": "a tabby cat", "size": "1024x1024"}'] },
    { id: 'r3', role: 'tool', name: 'dalle.text2im', content: { content_type: 'multimodal_text', parts: [{ content_type: 'image_asset_pointer', asset_pointer: 'sediment://file-def' }] } },
    say('a3', 'assistant', ''),
    say('u4', 'user', 'Thanks!'),
    { id: 'a4', role: 'assistant', parts: ['You are wel'], status: 'in_progress' },
  ])
}

test('ChatGPT: messages to tools become tool calls and their outputs tool results; citations become sources; an image the export lacks says so; a cut reply is interrupted', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const result = await json(await importing(app, [toolConversation()]))
  assert.deepEqual(result.skipped, [])
  const sessionId = result.imported[0].session_id
  const path = await messagesOf(app, sessionId)
  const shown = path.map((message: any) => ({ role: message.role, content: message.content, ...(message.tool_calls ? { tool_calls: message.tool_calls.map((call: any) => [call.name, call.arguments]) } : {}), ...(message.call_id ? { result_of: message.name } : {}) }))
  assert.deepEqual(shown, [
    { role: 'user', content: 'What is sin(pi/2)?' },
    { role: 'assistant', content: '', tool_calls: [['python', { code: 'import math\nprint(math.sin(math.pi / 2))' }]] },
    { role: 'tool', content: '1.0', result_of: 'python' },
    { role: 'assistant', content: 'It is 1.0.' },
    { role: 'user', content: 'Any news from Lisbon?' },
    { role: 'assistant', content: '', tool_calls: [['browser', { input: 'search("Lisbon news")' }]] },
    { role: 'tool', content: '# 【0†Tram line opens†news.example】', result_of: 'browser' },
    { role: 'assistant', content: 'A new tram line opened [1] and the metro grew [2].' },
    { role: 'user', content: '[image not included in the export]\nDraw one like this' },
    { role: 'assistant', content: '', tool_calls: [['dalle.text2im', { prompt: 'a tabby cat', size: '1024x1024' }]] },
    { role: 'tool', content: '[image not included in the export]', result_of: 'dalle.text2im' },
    { role: 'assistant', content: '[reply not included in the export]' },
    { role: 'user', content: 'Thanks!' },
    { role: 'assistant', content: 'You are wel' },
  ])
  assert.equal(path[2].call_id, path[1].tool_calls[0].call_id, 'the result answers its call')
  assert.deepEqual(path[7].sources, [
    { n: 1, url: 'https://news.example/tram', title: 'Tram news', snippet: 'The new line runs along the river.' },
    { n: 2, url: 'https://news.example/metro', title: 'Metro', snippet: 'news.example' },
  ])
  assert.equal(path[13].status, 'interrupted')
  assert.equal(path[13].model, 'gpt-4o-mini', 'a reply without a model has the conversation\'s default')
  assert.equal(path[3].model, 'gpt-4o')

  // Sent to a model as it happened: the calls and their results, not as replies.
  await json(await chat.fetch(chatRequest({ message: 'And now?', session_id: sessionId, stream: false }), app))
  const sent = fake.chatRequests().at(-1)!.body.messages
  assert.deepEqual(sent.slice(0, 4).map((message: any) => [message.role, message.tool_calls?.[0]?.function.name ?? null, message.tool_name ?? null]), [
    ['user', null, null], ['assistant', 'python', null], ['tool', null, 'python'], ['assistant', null, null],
  ])
  assert.deepEqual(sent[1].tool_calls[0].function.arguments, { code: 'import math\nprint(math.sin(math.pi / 2))' })

  // This server's export keeps the web sources, and its import brings them back.
  const exported = await json(await sessionExport.fetch(toRequest(`GET /v1/sessions/${sessionId}/export`), app))
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${sessionId}`), app)).status, 204)
  const copy = (await json(await importing(app, exported))).imported[0].session_id
  assert.deepEqual((await messagesOf(app, copy))[7].sources, path[7].sources)
})

test('Open WebUI: a bare chat is read; tool call blocks become tool steps and the reasoning block the reasoning; output items are read where present', async (t) => {
  const app = await testApp(t, null)
  const paris = [
    '<details type="reasoning" done="true" duration="3">\n<summary>Thought for 3 seconds</summary>\n> I should call the tool.\n</details>',
    'Let me check.',
    '<details type="tool_calls" done="true" id="call_1" name="get_weather" arguments="{&quot;city&quot;: &quot;Paris&quot;}" result="&quot;Sunny, 21 C&quot;" files="">\n<summary>Tool Executed</summary>\n</details>',
    'It is sunny and 21 °C in Paris.',
  ].join('\n')
  const bare = {
    id: 'owui-weather',
    title: 'Weather',
    models: ['qwen3:8b'],
    history: {
      currentId: 'a2',
      messages: {
        q1: { id: 'q1', parentId: null, childrenIds: ['a1'], role: 'user', content: 'Weather in Paris?', timestamp: 1_710_000_001 },
        a1: { id: 'a1', parentId: 'q1', childrenIds: ['q2'], role: 'assistant', content: paris, model: 'qwen3:8b', timestamp: 1_710_000_002 },
        q2: { id: 'q2', parentId: 'a1', childrenIds: ['a2'], role: 'user', content: 'And Rome?', timestamp: 1_710_000_003 },
        a2: {
          id: 'a2', parentId: 'q2', childrenIds: [], role: 'assistant', model: 'qwen3:8b', timestamp: 1_710_000_004,
          content: 'Cloudy and 18 °C in Rome.',
          output: [
            { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Call it again.' }] },
            { type: 'function_call', call_id: 'call_2', name: 'get_weather', arguments: '{"city": "Rome"}', status: 'completed' },
            { type: 'function_call_output', call_id: 'call_2', output: [{ type: 'input_text', text: 'Cloudy, 18 C' }] },
            { type: 'function_call', call_id: 'call_3', name: 'get_weather', arguments: '{"city": "Oslo"}', status: 'in_progress' },
            { type: 'message', content: [{ type: 'output_text', text: 'Cloudy and 18 °C in Rome.' }] },
          ],
        },
      },
    },
  }
  const result = await json(await importing(app, bare))
  assert.deepEqual(result.skipped, [])
  assert.equal(result.imported[0].title, 'Weather')
  const path = await messagesOf(app, result.imported[0].session_id)
  assert.deepEqual(path.map((message: any) => [message.role, message.content, message.thinking ?? null, message.tool_calls?.map((call: any) => [call.call_id, call.name, call.arguments]) ?? message.call_id ?? null]), [
    ['user', 'Weather in Paris?', null, null],
    ['assistant', 'Let me check.', null, [['call_1', 'get_weather', { city: 'Paris' }]]],
    ['tool', 'Sunny, 21 C', null, 'call_1'],
    ['assistant', 'It is sunny and 21 °C in Paris.', 'I should call the tool.', null],
    ['user', 'And Rome?', null, null],
    ['assistant', '', 'Call it again.', [['call_2', 'get_weather', { city: 'Rome' }]]],
    ['tool', 'Cloudy, 18 C', null, 'call_2'],
    ['assistant', 'Cloudy and 18 °C in Rome.', null, null],
  ], 'a call that never got its result (call_3) is left out')
  assert.equal(path[3].thinking_ms, 3000)
  assert.equal(path[7].model, 'qwen3:8b')
  assert.deepEqual((await json(await importing(app, bare))).skipped, [{ index: 0, reason: 'duplicate' }])
})

test('an entry that cannot be imported says what is wrong with it, beside the ones that import; nothing of it is stored', async (t) => {
  const app = await testApp(t, null)
  const result = await json(await importing(app, [
    { conversation_id: 'c-9', title: 'No messages', current_node: 'n1', default_model_slug: 'gpt-4o' },
    { id: 'w-1', chat: { title: 'Empty', models: ['llama3.2'] } },
    chatGpt('fine', 'Fine', [say('f1', 'user', 'Hi'), say('f2', 'assistant', 'Hello.')]),
    chatGpt('odd', 'Odd', [say('o1', 'user', 'Hi'), { id: 'o2', role: 'tool', name: 'python', content: { content_type: 'execution_output', text: 'stray' } }]),
  ]))
  assert.deepEqual(result.skipped, [
    { index: 0, reason: 'a ChatGPT conversation without `mapping` (the object that holds its messages)' },
    { index: 1, reason: 'an Open WebUI chat without `history.messages` (the object that holds its messages)' },
  ])
  assert.deepEqual(result.imported.map((entry: any) => [entry.title, entry.messages]), [['Fine', 2], ['Odd', 1]], 'a tool output with no call before it is not a message')
  assert.deepEqual(await rowCounts(app), { sessions: 2, messages: 3 })
})
