/**
 * Long conversations: the context budget. The fake Ollama counts tokens as it reports them (4
 * characters a token, plus its template) and honours num_ctx and `truncate`, as Ollama does.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import sessionGet from '../functions/session-get.ts'
import OpenAI from 'openai'
import { chatRequest, fakeOllama, json, readSse, recordingLogger, rowCounts, testApp, testServer, toRequest } from './support/app.ts'
import { promptTokensOf } from './support/fake-ollama.ts'
import { TokenEstimator } from '../lib/generation/context-budget.ts'

/** A message of about `tokens` tokens as the fake counts them, numbered so that no two are alike. */
const messageOf = (turn: number, tokens: number) => `Turn ${turn}: ${'lorem ipsum dolor '.repeat(Math.ceil((tokens * 4) / 18))}`.slice(0, tokens * 4)

test('a 40-turn chat stays within its budget at every turn, drops whole turns only, in few cuts, and between cuts extends the previous prompt exactly', async (t) => {
  const fake = await fakeOllama(t)
  // num_ctx 2048: a budget of 1,536 tokens (25% kept for the reply); about 80 tokens a turn.
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '2048' })
  let sessionId: string | undefined
  const contexts: any[] = []
  for (let turn = 1; turn <= 40; turn++) {
    const body = { message: messageOf(turn, 35), ...(sessionId ? { session_id: sessionId } : { system: 'You are terse.' }) }
    const { events } = await readSse(await chat.fetch(chatRequest(body), app))
    assert.equal(events.at(-1)!.data.type, 'done', `turn ${turn} ended well`)
    sessionId = events[0]!.data.session_id
    contexts.push(events[0]!.data.context)
  }
  const prompts = fake.chatRequests().map((request) => request.body)
  assert.equal(prompts.length, 40)
  assert.deepEqual(fake.truncated, [], 'Ollama never had to drop anything itself')
  let cuts = 0
  for (const [index, prompt] of prompts.entries()) {
    assert.equal(prompt.truncate, false)
    assert.ok(promptTokensOf(prompt.messages) <= 1536, `turn ${index + 1}: ${promptTokensOf(prompt.messages)} tokens sent, budget 1536`)
    assert.deepEqual(prompt.messages[0], { role: 'system', content: 'You are terse.' }, 'the system prompt always first')
    assert.equal(prompt.messages[1].role, 'user', 'whole turns: the history starts with a question')
    assert.equal(prompt.messages.at(-1).content, messageOf(index + 1, 35), 'the newest message always goes')
    const previous = prompts[index - 1]
    if (!previous) continue
    const extends_ = JSON.stringify(prompt.messages.slice(0, previous.messages.length)) === JSON.stringify(previous.messages)
      && prompt.messages.length === previous.messages.length + 2
    if (!extends_) cuts++
    assert.ok(extends_ || prompt.messages[1].content !== previous.messages[1].content, `turn ${index + 1}: either the same prefix or a new cut`)
  }
  assert.ok(cuts >= 2 && cuts <= 6, `${cuts} cuts over 40 turns`)

  const last = contexts.at(-1)
  assert.equal(last.sent_messages, prompts.at(-1).messages.length)
  assert.equal(last.dropped_messages, 79 - (last.sent_messages - 1), 'every user and assistant message before the cut')
  assert.equal(last.budget_tokens, 1536)
  assert.ok(last.estimated_tokens >= promptTokensOf(prompts.at(-1).messages), 'the estimate is never below what Ollama counts')
  assert.ok(last.estimated_tokens <= 1536)
  assert.equal(last.summarized, false)
  assert.equal(contexts[0].dropped_messages, 0)

  const session = await json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${sessionId}`), app))
  const messages = await json(await app.store.listMessages(sessionId!, 200, null).then((page) => Response.json(page.items)))
  const firstSent = messages.find((message: any) => message.content === prompts.at(-1).messages[1].content)
  assert.deepEqual(session.context_cut, { first_sent_message_id: firstSent.id, summarized: false })
})

test('CONTEXT_SUMMARY=on: each cut is summarized by the session\'s model in a bounded request, and the summary goes right after the system prompt; a failed summary falls back to the plain cut', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '1024', CONTEXT_SUMMARY: 'on' })
  let sessionId: string | undefined
  let summaryRequests = 0
  const cutTurns: number[] = []
  for (let turn = 1; turn <= 16; turn++) {
    const before = fake.chatRequests().length
    const body = { message: messageOf(turn, 70), model: 'qwen3:8b', ...(sessionId ? { session_id: sessionId } : { system: 'You are terse.' }) }
    const { events } = await readSse(await chat.fetch(chatRequest(body), app))
    assert.equal(events.at(-1)!.data.type, 'done')
    sessionId = events[0]!.data.session_id
    const requests = fake.chatRequests().slice(before).map((request) => request.body)
    if (requests.length === 1) continue
    // A cut: first the summary's own request, then the turn with the summary after the system prompt.
    summaryRequests++
    cutTurns.push(turn)
    assert.equal(requests.length, 2)
    const [summary, reply] = requests
    assert.equal(summary.model, 'qwen3:8b')
    assert.equal(summary.options.num_ctx, 1024)
    assert.ok(summary.options.num_predict <= Math.floor(768 * 0.15))
    assert.equal(summary.truncate, false)
    assert.match(summary.messages[1].content, summaryRequests === 1 ? /^User: Turn 1:/ : /^\(Summary of what came before: You said: /, 'the dropped turns, after the previous summary')
    assert.equal(reply.messages[0].content, 'You are terse.')
    assert.equal(reply.messages[1].role, 'system')
    assert.match(reply.messages[1].content, /^You said: /, 'the fake\'s answer to the summary request is the summary')
    assert.equal(reply.messages[2].role, 'user')
    assert.equal(events[0]!.data.context.summarized, true)
  }
  assert.ok(summaryRequests >= 1)
  const session = await json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${sessionId}`), app))
  assert.equal(session.context_cut.summarized, true)

  // The summary request fails (Ollama refuses it): the turn goes on with the plain cut, and the log says so.
  const log = recordingLogger()
  const plain = await testApp(t, fake, { DEFAULT_NUM_CTX: '1024', CONTEXT_SUMMARY: 'on' }, log)
  let plainSession: string | undefined
  for (let turn = 1; turn <= cutTurns[0]!; turn++) {
    // The same conversation cuts at the same turn; the summary's request comes first.
    if (turn === cutTurns[0]) fake.next({ status: 400, errorMessage: 'the input length exceeds the context length' })
    const before = fake.chatRequests().length
    const body = { message: messageOf(turn, 70), model: 'qwen3:8b', ...(plainSession ? { session_id: plainSession } : { system: 'You are terse.' }) }
    const { events } = await readSse(await chat.fetch(chatRequest(body), plain))
    assert.equal(events.at(-1)!.data.type, 'done', `turn ${turn}`)
    plainSession = events[0]!.data.session_id
    if (turn < cutTurns[0]!) continue
    const reply = fake.chatRequests().slice(before).at(-1)!.body
    assert.equal(reply.messages[1].role, 'user', 'no summary: the history right after the system prompt')
    assert.equal(events[0]!.data.context.summarized, false)
    assert.ok(events[0]!.data.context.dropped_messages > 0)
  }
  assert.ok(log.entries.some((entry) => entry.message === 'the summary of a cut failed; the turns before it are dropped without one'))
})

test('a message that cannot fit even alone is 400 context_overflow before anything is stored; max_tokens >= num_ctx is 400 validation', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const counts = await rowCounts(app)
  const overflow = await chat.fetch(chatRequest({ message: messageOf(1, 300), options: { num_ctx: 256 } }), app)
  assert.equal(overflow.status, 400)
  const problem = await json(overflow)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/context_overflow')
  assert.match(problem.detail, /about \d+ tokens, more than the 192/)
  const tooMany = await chat.fetch(chatRequest({ message: 'hi', options: { num_ctx: 512, max_tokens: 512 } }), app)
  assert.equal(tooMany.status, 400)
  assert.match((await json(tooMany)).detail, /max_tokens \(512\) leaves no room/)
  assert.deepEqual(await rowCounts(app), counts, 'nothing stored')
  assert.equal(fake.chatRequests().length, 0, 'Ollama never asked')
})

test('an estimate that is still short: Ollama\'s 400 (truncate false) recalibrates, and the turn is retried once with a deeper cut', async (t) => {
  const fake = await fakeOllama(t)
  // An estimator that counts half of what it learned, as if the model's tokenizer had changed under it.
  class HalfCounting extends TokenEstimator {
    override tokensPerChar(model: string): number {
      return super.tokensPerChar(model) / 2
    }
  }
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '1024' }, undefined, { tokens: new HalfCounting() })
  let sessionId: string | undefined
  for (let turn = 1; turn <= 12; turn++) {
    const { events } = await readSse(await chat.fetch(chatRequest({ message: messageOf(turn, 70), ...(sessionId ? { session_id: sessionId } : {}) }), app))
    assert.equal(events.at(-1)!.data.type, 'done', `turn ${turn}`)
    sessionId = events[0]!.data.session_id
  }
  const refused = fake.chatRequests().filter((request) => promptTokensOf(request.body.messages) > 1024)
  assert.ok(refused.length >= 1, 'the low estimate did overflow once')
  assert.deepEqual(fake.truncated, [], 'and was refused, never truncated silently')
})

test('Responses: truncation "disabled" (the default) is 400 context_length_exceeded once a chain outgrows the budget; "auto" cuts it like a chat and keeps the cut along the chain and in a conversation', async (t) => {
  const fake = await fakeOllama(t)
  const server = await testServer(t, fake, { DEFAULT_NUM_CTX: '1024' })
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  let previous: string | undefined
  let refusedAt = 0
  for (let turn = 1; turn <= 12 && !refusedAt; turn++) {
    try {
      previous = (await client.responses.create({ model: 'llama3.2', input: messageOf(turn, 70), ...(previous ? { previous_response_id: previous } : {}) })).id
    } catch (error) {
      assert.ok(error instanceof OpenAI.BadRequestError)
      assert.equal(error.code, 'context_length_exceeded')
      assert.match(error.message, /set truncation to "auto"/)
      refusedAt = turn
    }
  }
  assert.ok(refusedAt > 1, 'the chain grew until it did not fit')
  assert.ok(fake.chatRequests().every((request) => promptTokensOf(request.body.messages) <= 768), 'nothing over the budget was sent')

  // The same chain with truncation auto, continued past the point where it was refused.
  const requestsBefore = fake.chatRequests().length
  for (let turn = refusedAt; turn < refusedAt + 6; turn++) {
    const response = await client.responses.create({ model: 'llama3.2', input: messageOf(turn, 70), previous_response_id: previous!, truncation: 'auto' })
    assert.equal(response.truncation, 'auto')
    previous = response.id
  }
  const prompts = fake.chatRequests().slice(requestsBefore).map((request) => request.body.messages)
  assert.ok(prompts.every((messages) => promptTokensOf(messages) <= 768))
  assert.ok(prompts.every((messages) => messages[0].role === 'user'), 'whole turns')
  const extended = prompts.slice(1).filter((messages, index) => JSON.stringify(messages.slice(0, prompts[index]!.length)) === JSON.stringify(prompts[index]))
  assert.ok(extended.length >= 2, 'between cuts a chain\'s prompt extends the previous one')

  // In a conversation: the cut is kept with its session.
  const conversation = await client.conversations.create({})
  for (let turn = 1; turn <= 8; turn++) {
    await client.responses.create({ model: 'llama3.2', input: messageOf(turn, 70), conversation: conversation.id, truncation: 'auto' })
  }
  const sessionId = conversation.id.slice(5).replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')
  const session = await json(await fetch(`${server.url}/v1/sessions/${sessionId}`))
  assert.ok(session.context_cut?.first_sent_message_id, 'a cut kept with the conversation\'s session')
  const last = fake.chatRequests().at(-1)!.body.messages
  const { messages } = await json(await fetch(`${server.url}/v1/sessions/${sessionId}/messages?limit=100`))
  const first = messages.find((message: any) => message.id === session.context_cut.first_sent_message_id)
  assert.equal(first.role, 'user')
  assert.equal(first.content, last[0].content, 'the prompt begins at the kept cut')
})
