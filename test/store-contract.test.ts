/**
 * One contract for the store, run against each backend: SQLite in memory, and PostgreSQL on a
 * throwaway cluster this test starts itself (test/support/postgres.ts). What one backend does,
 * the other must do alike.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { describe, test, type TestContext } from 'node:test'
import { AccessError } from '../lib/store/access-store.ts'
import { LOCAL_USER_ID, titleFromMessage } from '../lib/store/chat-store.ts'
import { PostgresStore } from '../lib/store/postgres/store.ts'
import { SqliteStore } from '../lib/store/sqlite/store.ts'
import type { Store } from '../lib/store/store.ts'
import { postgresCluster } from './support/postgres.ts'

const BACKENDS: Record<string, () => Promise<Store>> = {
  sqlite: async () => new SqliteStore(':memory:'),
  postgres: async () => new PostgresStore(await (await postgresCluster()).newDatabase(), { maxConnections: 4 }),
}

const HOSTILE_TEXT = 'Grüße 👋🏽 — "quotes", \\backslash\\, <b>tags</b>, line\nbreaks\r\n, tabs\t, and 日本語'

for (const [kind, open] of Object.entries(BACKENDS)) {
  describe(`the ${kind} store`, () => {
    const opened = async (t: TestContext) => {
      const store = await open()
      t.after(() => store.close())
      assert.equal(store.kind, kind)
      await store.ping()
      return store
    }

    test('sessions: created, read only by their owner, renamed, listed both ways with cursors, deleted with their messages', async (t) => {
      const { chats } = await opened(t)
      const created: string[] = []
      for (let index = 0; index < 7; index++) created.push((await chats.createSession({ ownerId: 'alice', title: `s${index}` })).id)
      const other = await chats.createSession({ ownerId: 'bob', system: 'be brief' })
      assert.equal(other.message_count, 1)
      assert.equal(await chats.getSession(other.id, 'alice'), undefined, 'someone else\'s session is as absent as a missing one')
      assert.equal(await chats.updateSession(other.id, 'alice', { title: 'taken' }), undefined)
      assert.equal(await chats.deleteSession(other.id, 'alice'), 'missing')
      assert.equal(await chats.sessionOwner(other.id), 'bob')

      const walk = async (order: 'updated' | 'created') => {
        const seen: string[] = []
        let cursor = null
        do {
          const page = await chats.listSessions('alice', 3, cursor, order)
          seen.push(...page.items.map((session) => session.id))
          cursor = page.next
        } while (cursor)
        return seen
      }
      // Sessions made in the same millisecond are ordered by id, on both backends.
      const byCreation = await Promise.all(created.map(async (id) => (await chats.getSession(id, 'alice'))!))
      byCreation.sort((a, b) => (a.created_at === b.created_at ? (a.id < b.id ? -1 : 1) : a.created_at < b.created_at ? -1 : 1))
      assert.deepEqual(await walk('created'), byCreation.map((session) => session.id))
      const renamed = await chats.updateSession(created[0]!, 'alice', { title: 'renamed' })
      assert.equal(renamed!.title, 'renamed')
      assert.ok(renamed!.updated_at >= renamed!.created_at)
      const byUpdate = await walk('updated')
      assert.equal(byUpdate[0], created[0], 'the renamed session comes first')
      assert.deepEqual(new Set(byUpdate), new Set(created))

      await chats.addUserMessage({ sessionId: created[1]!, ownerId: 'alice', content: 'hello' })
      assert.equal(await chats.deleteSession(created[1]!, 'alice'), 'deleted')
      assert.equal(await chats.getSession(created[1]!, 'alice'), undefined)
    })

    test('a turn: the session made, titled by its first message, the system prompt once; the reply checkpointed, finished once, and history in order', async (t) => {
      const { chats } = await opened(t)
      const sessionId = randomUUID()
      const first = await chats.beginTurn({ sessionId, ownerId: 'alice', content: `${HOSTILE_TEXT}\nsecond line`, system: 'be brief', model: 'llama3.2' })
      assert.equal(first.newSession, true)
      const session = (await chats.getSession(sessionId, 'alice'))!
      assert.equal(session.title, titleFromMessage(HOSTILE_TEXT))
      assert.equal(session.message_count, 3)
      await assert.rejects(chats.beginTurn({ sessionId, ownerId: 'bob', content: 'mine now', model: 'llama3.2' }), (error: Error) => /No session has the id/.test(error.message))

      assert.equal(await chats.checkpointReply(first.reply.id, 'Hel'), true)
      assert.equal(await chats.finishReply(first.reply.id, { content: 'Hello', status: 'complete', tokensUsed: 2, promptTokens: 9, doneReason: 'stop', host: 'http://gpu1:11434' }), true)
      assert.equal(await chats.finishReply(first.reply.id, { content: 'again', status: 'complete' }), false, 'finished once')
      assert.equal(await chats.checkpointReply(first.reply.id, 'late'), false)
      assert.equal(await chats.sessionHost(sessionId), 'http://gpu1:11434')

      const second = await chats.beginTurn({ sessionId, ownerId: 'alice', content: 'and then?', system: 'ignored: it has one', model: 'llama3.2' })
      assert.equal(second.newSession, false)
      assert.deepEqual((await chats.history(sessionId)).messages.map(({ role, content }) => ({ role, content })), [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: `${HOSTILE_TEXT}\nsecond line` },
        { role: 'assistant', content: 'Hello' },
        { role: 'user', content: 'and then?' },
      ], 'exact text, the empty streaming reply left out')
      assert.equal((await chats.getSession(sessionId, 'alice'))!.title, session.title, 'only the first message names it')
      assert.equal(await chats.deleteMessage(sessionId, second.reply.id), false, 'a reply being generated cannot be deleted')
      assert.equal(await chats.deleteSession(sessionId, 'alice'), 'busy', 'nor its session')
      assert.equal(await chats.deleteSession(sessionId, 'bob'), 'missing', 'someone else\'s busy session is a missing one')
      assert.equal(await chats.interruptStreamingReplies(), 1)
      assert.equal((await chats.getMessage(second.reply.id))!.status, 'interrupted')
      await chats.discardReply(second.reply.id)
      assert.ok(await chats.getMessage(second.reply.id), 'only an empty streaming reply is discarded')

      assert.equal((await chats.history(sessionId)).cut, null, 'nothing cut yet')
      await chats.setContextCut(sessionId, { messageId: second.userMessageId, summary: `${HOSTILE_TEXT} summarized` })
      assert.deepEqual((await chats.history(sessionId)).cut, { messageId: second.userMessageId, summary: `${HOSTILE_TEXT} summarized` })
      await chats.setContextCut(sessionId, { messageId: second.userMessageId, summary: null })
      assert.deepEqual(await chats.contextCut(sessionId), { messageId: second.userMessageId, summary: null })
    })

    test('messages: paged both ways with cursors, owned lookups, conversation items, metadata', async (t) => {
      const { chats } = await opened(t)
      const { id: sessionId } = await chats.createSession({ ownerId: 'alice' })
      const ids = await chats.appendMessages(sessionId, 'alice', Array.from({ length: 8 }, (_, index) => ({ role: index % 2 ? 'assistant' as const : 'user' as const, content: `m${index}` })))
      const walk = async (order: 'asc' | 'desc') => {
        const seen: string[] = []
        let cursor = null
        do {
          const page = await chats.listMessages(sessionId, 3, cursor, order)
          seen.push(...page.items.map((message) => message.id))
          cursor = page.next
        } while (cursor)
        return seen
      }
      assert.deepEqual(await walk('asc'), ids, 'one timestamp for all: insertion order breaks the tie')
      assert.deepEqual(await walk('desc'), [...ids].reverse())
      assert.equal((await chats.getOwnedMessage(ids[0]!, 'alice'))!.content, 'm0')
      assert.equal(await chats.getOwnedMessage(ids[0]!, 'bob'), undefined)
      assert.equal((await chats.getSessionMessage(sessionId, ids[2]!))!.content, 'm2')
      assert.equal(await chats.deleteMessage(sessionId, ids[2]!), true)
      assert.equal((await chats.getSession(sessionId, 'alice'))!.message_count, 7)
      assert.deepEqual(await chats.sessionMetadata(sessionId), {})
      await chats.setSessionMetadata(sessionId, { topic: 'tests', 'ключ': 'значение' })
      assert.deepEqual(await chats.sessionMetadata(sessionId), { topic: 'tests', 'ключ': 'значение' })
      const replyId = await chats.addResponseTurn(sessionId, 'alice', [{ role: 'user', content: 'q' }], 'llama3.2')
      assert.equal((await chats.getMessage(replyId))!.status, 'streaming')
    })

    test('access: users unique in any case, keys created, listed, revoked and expired, sign-ins opened and ended, the local user\'s chats adopted with an audit entry', async (t) => {
      const { access, chats } = await opened(t)
      const alice = await access.addUser('Alice', 'admin')
      await assert.rejects(access.addUser('alice', 'user'), (error: Error) => error instanceof AccessError && error.reason === 'conflict')
      await assert.rejects(access.addUser('no spaces', 'user'), (error: Error) => error instanceof AccessError && error.reason === 'invalid')
      assert.equal((await access.user('ALICE')).id, alice.id)
      await access.addUser('bob', 'user')
      assert.deepEqual((await access.listUsers()).map((user) => user.name), ['Alice', 'bob'])

      const { key, info } = await access.createKey('alice', { name: 'laptop' })
      assert.equal(info.user_name, 'Alice')
      assert.equal((await access.authenticateKey(key))!.user.id, alice.id)
      const expired = await access.createKey('bob', { expiresAt: new Date(Date.now() - 1000).toISOString() })
      assert.equal(await access.authenticateKey(expired.key), undefined)
      assert.deepEqual((await access.listKeys('alice')).map((entry) => entry.name), ['laptop'])
      assert.equal((await access.listKeys()).length, 2)
      await assert.rejects(access.createKey('bob', { name: 'evil\u001b[2J' }), (error: Error) => error instanceof AccessError && error.reason === 'invalid')

      const signedIn = (await access.authenticateKey(key))!
      const { token } = await access.openWebSession(signedIn)
      assert.equal((await access.authenticateCookie(token))!.keyId, info.id)
      assert.equal(await access.authenticateCookie(token, Date.now() + 31 * 24 * 3_600_000), undefined, 'a sign-in expires')
      await access.closeWebSession(token)
      assert.equal(await access.authenticateCookie(token), undefined)
      const again = await access.openWebSession(signedIn)
      assert.equal((await access.revokeKey(info.id)).revoked_at !== null, true)
      assert.equal(await access.authenticateKey(key), undefined, 'refused at once')
      assert.equal(await access.authenticateCookie(again.token), undefined, 'its sign-ins end with it')
      await assert.rejects(access.revokeKey(info.id), (error: Error) => error instanceof AccessError && error.reason === 'conflict')
      await assert.rejects(access.keyInfo('key_nothing'), (error: Error) => error instanceof AccessError && error.reason === 'not_found')

      await chats.createSession({ ownerId: LOCAL_USER_ID, title: 'made while AUTH was off' })
      assert.equal(await access.adoptLocalSessions(alice, 'cli'), 1)
      assert.equal((await chats.listSessions(alice.id, 10, null)).items[0]!.title, 'made while AUTH was off')
      for (let index = 0; index < 5; index++) await access.audit({ userId: alice.id, action: `action_${index}`, outcome: 'ok' })
      const newest = await access.listAudit(3, null)
      assert.deepEqual(newest.map((entry) => entry.action), ['action_4', 'action_3', 'action_2'])
      assert.deepEqual((await access.listAudit(3, newest.at(-1)!.id)).map((entry) => entry.action), ['action_1', 'action_0', 'adopt_local'])
      assert.match(newest[0]!.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    })

    test('tool steps: stored between the reply and its question, in the order they happened, listed and sent as such; only to a streaming reply', async (t) => {
      const { chats } = await opened(t)
      const sessionId = randomUUID()
      const turn = await chats.beginTurn({ sessionId, ownerId: 'alice', content: 'What is 2+3?', model: 'qwen3' })
      const calls = [{ call_id: 'call_a', name: 'calc__add', arguments: { a: 2, b: 3, note: HOSTILE_TEXT } }, { call_id: 'call_b', name: 'calc__add', arguments: {} }]
      assert.equal(await chats.checkpointReply(turn.reply.id, 'Let me add.'), true)
      assert.match((await chats.addToolStep(turn.reply.id, {
        calls: { content: 'Let me add.', model: 'qwen3', toolCalls: calls },
        results: [{ callId: 'call_a', name: 'calc__add', content: '5', ok: true }, { callId: 'call_b', name: 'calc__add', content: 'Invalid arguments: a is required', ok: false }],
      }))!, /Z$/)
      // A later step's results only (as after an approval).
      const movedTo = await chats.addToolStep(turn.reply.id, { results: [{ callId: 'call_c', name: 'calc__add', content: '7', ok: true }] })
      assert.equal(await chats.checkpointReply(turn.reply.id, '2+3 is 5.'), true)

      const listed = (await chats.listMessages(sessionId, 10, null)).items
      assert.deepEqual(listed.map((message) => [message.role, message.content, message.status]), [
        ['user', 'What is 2+3?', 'complete'],
        ['assistant', 'Let me add.', 'complete'],
        ['tool', '5', 'complete'],
        ['tool', 'Invalid arguments: a is required', 'error'],
        ['tool', '7', 'complete'],
        ['assistant', '2+3 is 5.', 'streaming'],
      ])
      assert.deepEqual(listed[1]!.tool_calls, calls)
      assert.deepEqual([listed[2]!.call_id, listed[2]!.name, listed[4]!.call_id], ['call_a', 'calc__add', 'call_c'])
      assert.deepEqual([listed.at(-1)!.id, listed.at(-1)!.created_at], [turn.reply.id, movedTo])
      assert.deepEqual(listed.slice(1).map((message) => message.parent_id), listed.slice(0, -1).map((message) => message.id), 'one path')
      assert.ok(listed.every((message, index) => index === 0 || message.created_at >= listed[index - 1]!.created_at))
      const session = (await chats.getSession(sessionId, 'alice'))!
      assert.deepEqual([session.current_message_id, session.message_count], [turn.reply.id, 6])
      // Paged one at a time, the order holds.
      const paged: string[] = []
      let cursor = null
      do {
        const page = await chats.listMessages(sessionId, 1, cursor)
        paged.push(...page.items.map((message) => message.id))
        cursor = page.next
      } while (cursor)
      assert.deepEqual(paged, listed.map((message) => message.id))

      const sent = (await chats.history(sessionId)).messages
      assert.deepEqual(sent.map((message) => [message.role, message.content, message.toolCalls?.length ?? null, message.toolName ?? null]), [
        ['user', 'What is 2+3?', null, null],
        ['assistant', 'Let me add.', 2, null],
        ['tool', '5', null, 'calc__add'],
        ['tool', 'Invalid arguments: a is required', null, 'calc__add'],
        ['tool', '7', null, 'calc__add'],
        ['assistant', '2+3 is 5.', null, null],
      ])
      assert.equal(await chats.finishReply(turn.reply.id, { content: '2+3 is 5.', status: 'complete' }), true)
      assert.equal(await chats.addToolStep(turn.reply.id, { results: [] }), null, 'a finished reply takes no step')
      assert.equal((await chats.listMessages(sessionId, 10, null)).items.length, 6)
    })

    test('approvals: a paused reply keeps its calls; answers are recorded once, by the owner only; expiry denies; a fully answered reply is claimed once', async (t) => {
      const { chats } = await opened(t)
      const sessionId = randomUUID()
      const turn = await chats.beginTurn({ sessionId, ownerId: 'alice', content: 'Delete it?', model: 'qwen3' })
      const calls = [{ call_id: 'call_x', name: 'fs__delete', arguments: { path: '/tmp/a' } }, { call_id: 'call_y', name: 'fs__delete', arguments: { path: '/tmp/b' } }]
      const soon = new Date(Date.now() + 60_000).toISOString()
      const later = new Date(Date.now() + 120_000).toISOString()
      assert.ok(await chats.addToolStep(turn.reply.id, { calls: { content: '', model: 'qwen3', toolCalls: calls }, results: [], awaiting: { calls, turn: '{"state":1}', expiresAt: soon, events: 5 } }))
      const thirdSession = randomUUID()
      const third = await chats.beginTurn({ sessionId: thirdSession, ownerId: 'alice', content: 'And this?', model: 'qwen3' })
      const call3 = [{ call_id: 'call_z', name: 'fs__delete', arguments: {} }]
      assert.ok(await chats.addToolStep(third.reply.id, { calls: { content: '', model: 'qwen3', toolCalls: call3 }, results: [], awaiting: { calls: call3, turn: '{"state":3}', expiresAt: later, events: 3 } }))

      const reply = (await chats.getReply(turn.reply.id))!
      assert.deepEqual([reply.status, reply.event_count], ['awaiting_approval', 5])
      assert.deepEqual((await chats.pendingApprovals(sessionId)).map(({ call_id, name, arguments: args, reply_id, expires_at }) => [call_id, name, args, reply_id, expires_at]),
        [['call_x', 'fs__delete', { path: '/tmp/a' }, turn.reply.id, soon], ['call_y', 'fs__delete', { path: '/tmp/b' }, turn.reply.id, soon]])
      assert.equal(await chats.nextApprovalExpiry(), soon)
      const now = new Date().toISOString()
      assert.equal(await chats.answerApproval(sessionId, 'bob', 'call_x', true, now), 'missing', 'someone else\'s call is as unknown as a missing one')
      assert.equal(await chats.answerApproval(sessionId, 'alice', 'call_nope', true, now), 'missing')
      assert.equal(await chats.answerApproval(randomUUID(), 'alice', 'call_x', true, now), 'missing', 'a call is answered in its own session')
      assert.deepEqual(await chats.answerApproval(sessionId, 'alice', 'call_x', true, now), { replyId: turn.reply.id, remaining: 1 })
      assert.equal(await chats.answerApproval(sessionId, 'alice', 'call_x', false, now), 'answered')
      assert.equal(await chats.claimAnsweredReply(turn.reply.id), null, 'not while a call waits')
      assert.deepEqual(await chats.answeredReplies(), [])
      // call_y runs out of time; the reply no longer waits on anything.
      assert.deepEqual(await chats.expireApprovals(new Date(Date.parse(soon) + 1).toISOString()), [{ replyId: turn.reply.id, sessionId }])
      assert.equal(await chats.answerApproval(sessionId, 'alice', 'call_y', true, new Date(Date.parse(soon) + 2).toISOString()), 'answered', 'too late')
      assert.deepEqual(await chats.answeredReplies(), [{ replyId: turn.reply.id, sessionId }])
      assert.equal(await chats.nextApprovalExpiry(), later)

      const claimed = (await chats.claimAnsweredReply(turn.reply.id))!
      assert.deepEqual([claimed.sessionId, claimed.ownerId, claimed.replyId, claimed.model, claimed.events, claimed.turn], [sessionId, 'alice', turn.reply.id, 'qwen3', 5, '{"state":1}'])
      assert.equal(claimed.createdAt, reply.created_at)
      assert.deepEqual(claimed.calls.map((call) => [call.call_id, call.decision]).sort(), [['call_x', 'approved'], ['call_y', 'expired']])
      assert.equal((await chats.getReply(turn.reply.id))!.status, 'streaming')
      assert.equal(await chats.claimAnsweredReply(turn.reply.id), null, 'claimed once')
      assert.deepEqual(await chats.answeredReplies(), [])
      assert.deepEqual(await chats.answerApproval(thirdSession, 'alice', 'call_z', false, now), { replyId: third.reply.id, remaining: 0 })
      assert.deepEqual((await chats.claimAnsweredReply(third.reply.id))!.calls.map((call) => call.decision), ['denied'])
    })

    test('responses: stored with their request, read only by their owner, chained, checkpointed, ended once, interrupted, deleted', async (t) => {
      const { responses } = await opened(t)
      const params = { max_output_tokens: null, temperature: 0.2, top_p: null, metadata: { a: 'b' }, text_format: { type: 'text' }, store: true, tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { z: {}, a: {} } } }] }
      const base = { owner_id: 'alice', session_id: null, model: 'llama3.2', status: 'in_progress' as const, background: false, params, created_at: new Date().toISOString() }
      await responses.insert({ ...base, id: 'resp_1', previous_response_id: null, instructions: 'Be terse.', input: [{ id: 'msg_1', role: 'user', text: HOSTILE_TEXT }] })
      await responses.insert({ ...base, id: 'resp_2', previous_response_id: 'resp_1', instructions: null, input: [{ type: 'function_call_output', id: 'fco_1', call_id: 'call_1', output: '{"ok":true}' }] })
      const stored = (await responses.get('resp_1', 'alice'))!
      assert.deepEqual(stored.input, [{ id: 'msg_1', role: 'user', text: HOSTILE_TEXT }])
      assert.equal(JSON.stringify(stored.params), JSON.stringify(params), 'parameters come back as written, key order included')
      assert.equal(await responses.get('resp_1', 'bob'), undefined)
      assert.deepEqual((await responses.chain('resp_2', 'alice')).map((response) => response.id), ['resp_1', 'resp_2'])
      assert.deepEqual(await responses.chain('resp_2', 'bob'), [])

      const reasoning = { text: 'The capital.', deltas: [4, 8], at: 0 }
      assert.equal(await responses.checkpoint('resp_1', 'Pa', [2], [], { ...reasoning, deltas: [4] }), true)
      assert.deepEqual((await responses.get('resp_1', 'alice'))!.reasoning, { ...reasoning, deltas: [4] })
      const end = { status: 'completed' as const, outputText: 'Paris.', deltas: [2, 4], toolCalls: [{ call_id: 'call_9', name: 'f', arguments: '{"z":1}' }], mcpItems: [], reasoning, usage: { input_tokens: 5, output_tokens: 2 }, incompleteReason: null, error: null }
      assert.equal(await responses.finish('resp_1', end), true)
      assert.equal(await responses.finish('resp_1', end), false, 'ended once')
      const ended = (await responses.get('resp_1', 'alice'))!
      assert.deepEqual([ended.status, ended.output_text, ended.deltas, ended.tool_calls, ended.usage, ended.reasoning], ['completed', 'Paris.', [2, 4], end.toolCalls, end.usage, reasoning])
      assert.match(ended.completed_at!, /Z$/)
      assert.equal(await responses.interruptRunning(), 1)
      assert.equal((await responses.get('resp_2', 'alice'))!.status, 'failed')
      assert.equal(await responses.delete('resp_2', 'bob'), false)
      assert.equal(await responses.delete('resp_2', 'alice'), true)
      assert.equal(await responses.get('resp_2', 'alice'), undefined)
    })

    test('roles apart: search finds only its owner\'s finished messages and titles', async (t) => {
      const { chats } = await opened(t)
      const { searchIndex, replies } = chats
      await replies.beginTurn({ sessionId: randomUUID(), ownerId: 'alice', content: 'the kestrel hovers', model: 'm' })
      const turn = await replies.beginTurn({ sessionId: randomUUID(), ownerId: 'bob', content: 'a kestrel too', model: 'm' })
      await replies.checkpointReply(turn.reply.id, 'kestrel facts so far')
      const found = await searchIndex.search('alice', ['kestrel'], 10, 0)
      // The message, and its session's title (taken from it).
      assert.deepEqual(found.map((hit) => `${hit.role}: ${hit.text}`).sort(), ['null: the kestrel hovers', 'user: the kestrel hovers'])
      assert.deepEqual((await searchIndex.search('bob', ['facts'], 10, 0)), [], 'a reply still streaming is not searched')
    })

    test('search: the newest 500 matches are ranked, of the words whole when there are that many, else as prefixes', async (t) => {
      const { chats } = await opened(t)
      const session = await chats.createSession({ ownerId: 'alice', title: 'log' })
      await chats.appendMessages(session.id, 'alice', Array.from({ length: 501 }, (_, index) => ({ role: 'user' as const, content: `harbour entry ${index}` })))
      const [newest] = await chats.appendMessages(session.id, 'alice', [{ role: 'user', content: 'harbours at night' }])
      const everyPage = async (words: string[]) => {
        const hits = []
        for (let offset = 0; ; offset += 50) {
          const page = await chats.searchIndex.search('alice', words, 50, offset)
          hits.push(...page)
          if (page.length < 50) return hits
        }
      }
      const whole = await everyPage(['harbour'])
      assert.equal(whole.length, 500, 'a window of the newest')
      assert.ok(!whole.some((hit) => hit.text === 'harbour entry 0'), 'the oldest match is past it')
      assert.ok(!whole.some((hit) => hit.messageId === newest), 'the word whole fills it: a longer word is not read')
      const prefix = await everyPage(['harbo'])
      assert.equal(prefix.length, 500)
      assert.equal(prefix[0]!.messageId, newest, 'as a prefix: every word it begins, the newest first among equals')
      assert.equal(prefix.at(-1)!.text, 'harbour entry 2')
    })

    test('roles apart: an import is hidden until finished, once per source, and dropped when unfinished', async (t) => {
      const { chats } = await opened(t)
      const { transfers, sessions } = chats
      const at = '2026-01-01T00:00:00.000Z'
      const conversation = { sourceId: 'chatgpt:c1', sameAsSession: null, title: 'Imported', createdAt: at, updatedAt: at, messages: [], currentId: 'q' }
      const start = await transfers.beginImport('alice', conversation)
      assert.ok('sessionId' in start)
      const { sessionId } = start
      await transfers.addImportedMessages(sessionId, [{ id: 'q', sourceId: 'file-q', parentId: null, role: 'user', content: HOSTILE_TEXT, model: null, status: 'complete', createdAt: at }])
      assert.equal(await sessions.getSession(sessionId, 'alice'), undefined, 'nobody sees it before it is finished')
      assert.equal(await transfers.finishImport('alice', sessionId, conversation, 'q'), 'imported')
      assert.equal((await sessions.getSession(sessionId, 'alice'))?.current_message_id, 'q')
      assert.deepEqual(await transfers.beginImport('alice', conversation), { existingId: sessionId })
      const tree = await transfers.importedTree(sessionId)
      assert.deepEqual(tree.messages, [{ id: 'q', parentId: null, role: 'user', content: HOSTILE_TEXT }])
      assert.deepEqual([...tree.sources], [['file-q', 'q']])
      assert.equal(tree.currentId, 'q')
      await transfers.addImportedMessages(sessionId, [{ id: 'a', sourceId: 'file-a', parentId: 'q', role: 'assistant', content: 'Yes.', model: 'm', status: 'complete', createdAt: at }])
      await transfers.finishImportUpdate(sessionId, 'q', '2026-02-01T00:00:00.000Z')
      const updated = await sessions.getSession(sessionId, 'alice')
      assert.equal(updated?.current_message_id, 'q', 'the active path is where the update put it')
      assert.equal(Date.parse(updated!.updated_at), Date.parse('2026-02-01T00:00:00.000Z'))
      assert.deepEqual(new Map((await transfers.importedTree(sessionId)).sources), new Map([['file-q', 'q'], ['file-a', 'a']]))
      const unfinished = await transfers.beginImport('bob', conversation)
      assert.ok('sessionId' in unfinished, 'another user imports it for themselves')
      assert.equal(await transfers.dropUnfinishedImports(), 1)
    })

    test('roles apart: an idempotency key is new once, running until recorded, then done; another request with it is a mismatch', async (t) => {
      const { chats } = await opened(t)
      const { idempotency } = chats
      const request = { ownerId: 'alice', key: 'k1', fingerprint: 'f1', expiredBefore: '2000-01-01T00:00:00.000Z', staleBefore: '2000-01-01T00:00:00.000Z' }
      assert.deepEqual(await idempotency.claimIdempotencyKey(request), { state: 'new' })
      assert.deepEqual(await idempotency.claimIdempotencyKey(request), { state: 'running' })
      assert.deepEqual(await idempotency.claimIdempotencyKey({ ...request, fingerprint: 'f2' }), { state: 'mismatch' })
      assert.deepEqual(await idempotency.claimIdempotencyKey({ ...request, ownerId: 'bob' }), { state: 'new' }, 'keys are per user')
      await idempotency.recordIdempotentOutcome('alice', 'k1', { status: 201, answer: '{"ok":true}' })
      const done = await idempotency.claimIdempotencyKey(request)
      assert.equal(done.state, 'done')
      assert.equal(done.state === 'done' && done.outcome.answer, '{"ok":true}')
      await idempotency.releaseIdempotencyKey('bob', 'k1')
      assert.deepEqual(await idempotency.claimIdempotencyKey({ ...request, ownerId: 'bob' }), { state: 'new' }, 'released: claimed anew')
    })

    test('roles apart: a message\'s images listed in order, with their bytes when asked, each readable by its owner only', async (t) => {
      const { chats } = await opened(t)
      const { attachments, messages } = chats
      const sessionId = randomUUID()
      const image = (byte: number) => ({ mediaType: 'image/png', width: 2, height: 1, data: new Uint8Array([byte, 1, 2]) })
      const { userMessageId } = await messages.addUserMessage({ sessionId, ownerId: 'alice', content: 'look', images: [image(7), image(9)] })
      const listed = (await attachments.imagesOf([userMessageId])).get(userMessageId)!
      assert.deepEqual(listed.map((info) => [info.media_type, info.width, info.height, info.bytes]), [['image/png', 2, 1, 3], ['image/png', 2, 1, 3]])
      const withData = (await attachments.imagesOf([userMessageId], true)).get(userMessageId)!
      assert.deepEqual(withData.map((stored) => [...stored.data]), [[7, 1, 2], [9, 1, 2]])
      assert.deepEqual([...(await attachments.getAttachment(listed[1]!.id, 'alice'))!.data], [9, 1, 2])
      assert.equal(await attachments.getAttachment(listed[1]!.id, 'bob'), undefined, 'someone else\'s image is as absent as a missing one')
    })
  })
}

test('the postgres store answers its health check within its deadline, and fails it when the database is gone', async () => {
  const store = new PostgresStore(await (await postgresCluster()).newDatabase(), { maxConnections: 2 })
  await store.ping()
  await store.close()
  await assert.rejects(store.ping())
})


