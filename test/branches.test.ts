/**
 * Branches: messages form a tree, a session has an active path, and only that path goes to
 * Ollama. Regenerate and edit add siblings; switching picks another path. On both backends.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import chat from '../functions/chat.ts'
import regenerate from '../functions/session-regenerate.ts'
import setCurrent from '../functions/session-current.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionGet from '../functions/session-get.ts'
import { authServer, chatRequest, fakeOllama, json, readSse, testApp, toRequest, take, sseEvents } from './support/app.ts'
import { FakeOllama } from './support/fake-ollama.ts'

const sent = (request: { body: any }) => request.body.messages.map((message: any) => message.content)

test('regenerate makes a sibling reply to the same question, sent only the path up to that question; the new reply becomes active and the next turn follows it', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', stream: false, system: 'Be brief.' }), app))
  const sessionId = first.session_id
  const second = await json(await chat.fetch(chatRequest({ message: 'Q2', session_id: sessionId, stream: false, model: 'qwen3:8b' }), app))

  fake.scenario = { tokens: ['Another ', 'try'] }
  const { events } = await readSse(await regenerate.fetch(toRequest(`POST /v1/sessions/${sessionId}/messages/${second.id}/regenerate`), app))
  assert.deepEqual(events.map((event) => event.data.type), ['start', 'token', 'token', 'done'], 'answered exactly like POST /v1/chat')
  const retry = events[0]!.data
  assert.equal(retry.session_id, sessionId)
  assert.notEqual(retry.message_id, second.id)
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Be brief.', 'Q1', 'You said: Q1', 'Q2'], 'the path up to the question, not the first try')
  assert.equal(fake.chatRequests().at(-1)!.body.model, 'qwen3:8b', 'by default the model of the reply it retries')

  const path = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))
  assert.deepEqual(path.messages.map((message: any) => message.content), ['Be brief.', 'Q1', 'You said: Q1', 'Q2', 'Another try'])
  const [system, q1, a1, q2, a2] = path.messages
  assert.equal(system.parent_id, null)
  assert.equal(q1.parent_id, system.id)
  assert.equal(a2.parent_id, q2.id)
  assert.deepEqual(a2.sibling_ids, [second.id, retry.message_id], 'siblings in creation order, itself included')
  assert.deepEqual(a1.sibling_ids, [a1.id])
  assert.equal(path.current_message_id, retry.message_id)

  const all = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages?branch=all`), app))
  assert.deepEqual(all.messages.map((message: any) => message.content), ['Be brief.', 'Q1', 'You said: Q1', 'Q2', 'You said: Q2', 'Another try'])

  fake.scenario = {}
  await json(await chat.fetch(chatRequest({ message: 'Q3', session_id: sessionId, stream: false }), app))
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Be brief.', 'Q1', 'You said: Q1', 'Q2', 'Another try', 'Q3'])

  // stream:false and another model: a JSON answer, like POST /v1/chat's.
  const again = await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${sessionId}/messages/${a1.id}/regenerate`, { stream: false, model: 'llama3.2:latest', options: { temperature: 1.5 } }), app))
  assert.equal(again.session_id, sessionId)
  assert.equal(again.content, 'You said: Q1')
  assert.equal(again.model, 'llama3.2:latest')
  assert.equal(fake.chatRequests().at(-1)!.body.options.temperature, 1.5)
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Be brief.', 'Q1'])
  const afterRetry = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))
  assert.deepEqual(afterRetry.messages.map((message: any) => message.id), [system.id, q1.id, again.id], 'the new reply ends the active path')
})

test('a question Ollama could not answer (it was down) is answered once it is back, by regenerating the question itself', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', stream: false }), app))
  const port = Number(new URL(fake.url).port)
  await fake.close()
  const refused = await chat.fetch(chatRequest({ message: 'Q2', session_id: first.session_id }), app)
  assert.equal(refused.status, 503)
  const stranded = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages`), app))).messages
  assert.deepEqual(stranded.map((message: any) => [message.role, message.content]), [['user', 'Q1'], ['assistant', 'You said: Q1'], ['user', 'Q2']], 'the question is kept')
  const back = await new FakeOllama().listen(port)
  t.after(() => back.close())
  const answered = await json(await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${stranded[2].id}/regenerate`, { stream: false }), app))
  assert.equal(answered.content, 'You said: Q2')
  assert.deepEqual(sent(back.chatRequests()[0]!), ['Q1', 'You said: Q1', 'Q2'])
  const path = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages`), app))).messages
  assert.deepEqual(path.map((message: any) => message.content), ['Q1', 'You said: Q1', 'Q2', 'You said: Q2'])
  assert.equal(path[3].parent_id, stranded[2].id)
})

test('regenerate refuses what it cannot retry: a system message, an unknown id, a bad body; nothing is stored', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const reply = await json(await chat.fetch(chatRequest({ message: 'Q1', system: 'Be brief.', stream: false }), app))
  const path = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${reply.session_id}/messages?branch=all`), app))
  const system = path.messages[0]
  assert.equal(system.role, 'system')
  const before = fake.chatRequests().length
  for (const messageId of [system.id, '00000000-0000-4000-8000-000000000000']) {
    const response = await regenerate.fetch(toRequest(`POST /v1/sessions/${reply.session_id}/messages/${messageId}/regenerate`), app)
    assert.equal(response.status, 404)
    assert.equal((await json(response)).type.endsWith('/not_found'), true)
  }
  const bad = await regenerate.fetch(toRequest(`POST /v1/sessions/${reply.session_id}/messages/${reply.id}/regenerate`, { stream: 'yes' }), app)
  assert.equal(bad.status, 400)
  const unknownSession = await regenerate.fetch(toRequest(`POST /v1/sessions/00000000-0000-4000-8000-000000000000/messages/${reply.id}/regenerate`), app)
  assert.equal(unknownSession.status, 404)
  assert.equal(fake.chatRequests().length, before, 'Ollama never asked')
  const after = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${reply.session_id}/messages?branch=all`), app))
  assert.deepEqual(after.messages, path.messages)
})

test('edit: a new question as a sibling of the old one, answered from the same point; switching back restores the first branch, continued by its newest replies, and survives a reload', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', system: 'Be brief.', stream: false }), app))
  const sessionId = first.session_id
  await json(await chat.fetch(chatRequest({ message: 'Q2', session_id: sessionId, stream: false }), app))
  const original = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
  const [system, q1] = original

  const { events } = await readSse(await chat.fetch(chatRequest({ message: 'Q1, better', session_id: sessionId, edit_of: q1.id }), app))
  assert.equal(events.at(-1)!.data.type, 'done')
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Be brief.', 'Q1, better'], 'what came after the edited question is not sent')
  const edited = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
  assert.deepEqual(edited.map((message: any) => message.content), ['Be brief.', 'Q1, better', 'You said: Q1, better'])
  assert.equal(edited[1].parent_id, system.id)
  assert.deepEqual(edited[1].sibling_ids, [q1.id, edited[1].id])

  // Switch to the first question: its path continues to the newest reply below it.
  const switched = await setCurrent.fetch(toRequest(`PUT /v1/sessions/${sessionId}/current`, { message_id: q1.id }), app)
  assert.equal(switched.status, 200)
  assert.deepEqual(await json(switched), { session_id: sessionId, current_message_id: original.at(-1).id })
  const reloaded = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))
  assert.deepEqual(reloaded.messages.map((message: any) => message.id), original.map((message: any) => message.id))
  assert.equal((await json(await sessionGet.fetch(toRequest(`GET /v1/sessions/${sessionId}`), app))).current_message_id, original.at(-1).id)
  await json(await chat.fetch(chatRequest({ message: 'Q3', session_id: sessionId, stream: false }), app))
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Be brief.', 'Q1', 'You said: Q1', 'Q2', 'You said: Q2', 'Q3'])

  // Editing the very first message of a session without a system prompt: a second root.
  const bare = await json(await chat.fetch(chatRequest({ message: 'Hello', stream: false }), app))
  const [hello] = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${bare.session_id}/messages`), app))).messages
  await json(await chat.fetch(chatRequest({ message: 'Hi', session_id: bare.session_id, edit_of: hello.id, stream: false }), app))
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Hi'])
  const roots = (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${bare.session_id}/messages`), app))).messages
  assert.equal(roots[0].parent_id, null)
  assert.deepEqual(roots[0].sibling_ids, [hello.id, roots[0].id])
})

test('edit and switch refuse what they cannot do, changing nothing: edit_of without a session, of a reply or an unknown id; a message of another session', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const reply = await json(await chat.fetch(chatRequest({ message: 'Q1', stream: false }), app))
  const other = await json(await chat.fetch(chatRequest({ message: 'Elsewhere', stream: false }), app))
  const before = fake.chatRequests().length
  const noSession = await chat.fetch(chatRequest({ message: 'x', edit_of: reply.id }), app)
  assert.equal(noSession.status, 400)
  assert.match((await json(noSession)).detail, /edit_of/)
  for (const editOf of [reply.id, '00000000-0000-4000-8000-000000000000', other.id]) {
    const response = await chat.fetch(chatRequest({ message: 'x', session_id: reply.session_id, edit_of: editOf }), app)
    assert.equal(response.status, 404, `edit_of ${editOf}`)
  }
  for (const messageId of ['00000000-0000-4000-8000-000000000000', other.id]) {
    const response = await setCurrent.fetch(toRequest(`PUT /v1/sessions/${reply.session_id}/current`, { message_id: messageId }), app)
    assert.equal(response.status, 404)
  }
  const badBody = await setCurrent.fetch(toRequest(`PUT /v1/sessions/${reply.session_id}/current`, { message_id: 'nope' }), app)
  assert.equal(badBody.status, 400)
  assert.equal(fake.chatRequests().length, before)
  const path = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${reply.session_id}/messages?branch=all`), app))
  assert.equal(path.messages.length, 2)
  assert.equal(path.current_message_id, reply.id)
})

test('while a reply runs, switching branches and regenerating answer 409 and change nothing', async (t) => {
  const fake = await fakeOllama(t, { scenario: { tokens: ['a', 'b', 'c'], paced: true } })
  const app = await testApp(t, fake)
  fake.scenario = {}
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', stream: false }), app))
  fake.scenario = { tokens: ['a', 'b', 'c'], paced: true }
  fake.release()
  const running = sseEvents(await chat.fetch(chatRequest({ message: 'Q2', session_id: first.session_id }), app))
  const [start] = await take(running, 1)
  const path = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages?branch=all`), app))
  const busySwitch = await setCurrent.fetch(toRequest(`PUT /v1/sessions/${first.session_id}/current`, { message_id: path.messages[0].id }), app)
  assert.equal(busySwitch.status, 409)
  const busyRetry = await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${first.id}/regenerate`), app)
  assert.equal(busyRetry.status, 409)
  fake.release(10)
  const rest = await take(running, 4)
  assert.equal(rest.at(-1)!.data.type, 'done')
  const after = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages?branch=all`), app))
  assert.equal(after.messages.length, 4)
  assert.equal(after.current_message_id, (start as any).data.message_id)
})

test('another user\'s session or message answers exactly like a missing one, for regenerate, switch, edit and the paths', async (t) => {
  const fake = await fakeOllama(t)
  const server = await authServer(t, fake)
  const alice = await server.userWithKey('alice')
  const bob = await server.userWithKey('bob')
  const post = (path: string, body: unknown, headers: Record<string, string>, method = 'POST') =>
    fetch(`${server.url}${path}`, { method, headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const reply = await json(await post('/v1/chat', { message: 'secret', stream: false }, alice.headers))
  const path = await json(await fetch(`${server.url}/v1/sessions/${reply.session_id}/messages`, { headers: alice.headers }))
  const question = path.messages[0]
  const missing = '00000000-0000-4000-8000-000000000000'
  const pairs: Array<[string, () => Promise<Response>, () => Promise<Response>]> = [
    ['regenerate', () => post(`/v1/sessions/${reply.session_id}/messages/${reply.id}/regenerate`, {}, bob.headers), () => post(`/v1/sessions/${missing}/messages/${reply.id}/regenerate`, {}, bob.headers)],
    ['switch', () => post(`/v1/sessions/${reply.session_id}/current`, { message_id: question.id }, bob.headers, 'PUT'), () => post(`/v1/sessions/${missing}/current`, { message_id: question.id }, bob.headers, 'PUT')],
    ['edit', () => post('/v1/chat', { message: 'mine now', session_id: reply.session_id, edit_of: question.id }, bob.headers), () => post('/v1/chat', { message: 'mine now', session_id: missing, edit_of: question.id }, bob.headers)],
    ['all branches', () => fetch(`${server.url}/v1/sessions/${reply.session_id}/messages?branch=all`, { headers: bob.headers }), () => fetch(`${server.url}/v1/sessions/${missing}/messages?branch=all`, { headers: bob.headers })],
  ]
  for (const [what, theirs, absent] of pairs) {
    const [a, b] = [await theirs(), await absent()]
    assert.equal(a.status, 404, what)
    const [problemA, problemB] = [await json(a), await json(b)]
    assert.equal(problemA.type, problemB.type, what)
    assert.equal(problemA.detail.replaceAll(reply.session_id, missing), problemB.detail, what)
  }
  const after = await json(await fetch(`${server.url}/v1/sessions/${reply.session_id}/messages?branch=all`, { headers: alice.headers }))
  assert.deepEqual(after.messages, path.messages, 'nothing of alice\'s changed')
  // The routes are there: the owner gets what bob did not.
  assert.equal((await post(`/v1/sessions/${reply.session_id}/messages/${reply.id}/regenerate`, { stream: false }, alice.headers)).status, 200)
  assert.equal((await post(`/v1/sessions/${reply.session_id}/current`, { message_id: reply.id }, alice.headers, 'PUT')).status, 200)
  assert.equal((await post('/v1/chat', { message: 'again', session_id: reply.session_id, edit_of: question.id, stream: false }, alice.headers)).status, 200)
})

test('a regeneration Ollama refuses stores nothing and leaves the active path as it was', async (t) => {
  const fake = await fakeOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'Q1', stream: false }), app))
  const second = await json(await chat.fetch(chatRequest({ message: 'Q2', session_id: first.session_id, stream: false }), app))
  const before = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages?branch=all`), app))
  fake.next({ status: 500, errorMessage: 'out of memory' })
  const refused = await regenerate.fetch(toRequest(`POST /v1/sessions/${first.session_id}/messages/${first.id}/regenerate`), app)
  assert.equal(refused.status, 502)
  const after = await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${first.session_id}/messages?branch=all`), app))
  assert.deepEqual(after, before, 'no reply left behind, the same active leaf')
  assert.equal(after.current_message_id, second.id)
  await json(await chat.fetch(chatRequest({ message: 'Q3', session_id: first.session_id, stream: false }), app))
  assert.deepEqual(sent(fake.chatRequests().at(-1)!), ['Q1', 'You said: Q1', 'Q2', 'You said: Q2', 'Q3'])
})
