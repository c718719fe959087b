import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionRegenerate from '../functions/session-regenerate.ts'
import sessionStream from '../functions/session-stream.ts'
import type { AppContext } from '../lib/context.ts'
import { chatRequest, fakeOllama, json, readSse, rowCounts, sseEvents, takeText, testApp, tokenText, toRequest } from './support/app.ts'

const regenerate = (app: AppContext, sessionId: string, messageId: string, body: unknown) =>
  sessionRegenerate.fetch(toRequest(`POST /v1/sessions/${sessionId}/messages/${messageId}/regenerate`, body), app)
const messagesOf = async (app: AppContext, sessionId: string) => (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages

test('continue a reply cut at its token limit: a new version that starts with its text and goes on; the model is sent the text to go on from', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  fake.next({ tokens: ['Three days in Lisbon: ', 'day one, Alfama;'], doneReason: 'length' })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Plan three days in Lisbon' }), app))
  const { session_id: sessionId, message_id: cutId } = events[0]!.data
  const cut = (await messagesOf(app, sessionId)).at(-1)
  assert.deepEqual([cut.content, cut.done_reason], ['Three days in Lisbon: day one, Alfama;', 'length'])

  fake.next({ tokens: [' day two, Belém;', ' day three, Sintra.'] })
  const continued = await readSse(await regenerate(app, sessionId, cutId, { continue: true }))
  // Every reader gets the whole text: the cut reply's first, then what the model adds.
  assert.equal(tokenText(continued.events), 'Three days in Lisbon: day one, Alfama; day two, Belém; day three, Sintra.')
  const sent = fake.chatRequests().at(-1)!.body.messages
  assert.deepEqual(sent.map((message: any) => [message.role, message.content]), [['user', 'Plan three days in Lisbon'], ['assistant', 'Three days in Lisbon: day one, Alfama;']])

  const messages = await messagesOf(app, sessionId)
  assert.equal(messages.length, 2)
  const reply = messages[1]
  assert.equal(reply.content, 'Three days in Lisbon: day one, Alfama; day two, Belém; day three, Sintra.')
  assert.equal(reply.done_reason, 'stop')
  assert.deepEqual(reply.sibling_ids, [cutId, reply.id], 'the cut reply stays, as the other version')
})

test('a continued reply followed after it began (another tab, a reload) shows the whole text, not only the new part', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  fake.next({ tokens: ['One, ', 'two,'], doneReason: 'length' })
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Count' }), app))
  const { session_id: sessionId, message_id: cutId } = events[0]!.data
  fake.next({ tokens: [' three,', ' four.'], paced: true })
  // The answer waits for Ollama's first line, which waits for the test.
  const answered = regenerate(app, sessionId, cutId, { continue: true })
  fake.release(1)
  const running = sseEvents(await answered)
  await takeText(running, 'One, two, three,')
  const follower = await sessionStream.fetch(toRequest(`GET /v1/sessions/${sessionId}/stream`), app)
  fake.release(10)
  assert.equal(tokenText((await readSse(follower)).events), 'One, two, three, four.')
  assert.equal((await messagesOf(app, sessionId)).at(-1).content, 'One, two, three, four.')
})

test('only a reply with text that answers its question is continued: questions, empty replies and bad values are 400s that store nothing', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'hello' }), app))
  const { session_id: sessionId, message_id: replyId, user_message_id: questionId } = events[0]!.data
  const before = await rowCounts(app)
  const asked = fake.chatRequests().length
  const question = await regenerate(app, sessionId, questionId, { continue: true })
  assert.equal(question.status, 400)
  assert.match((await json(question)).detail, /only a reply can be continued/)
  assert.equal((await regenerate(app, sessionId, replyId, { continue: 'yes' })).status, 400)
  assert.deepEqual(await rowCounts(app), before)
  assert.equal(fake.chatRequests().length, asked, 'Ollama was not asked')
})
