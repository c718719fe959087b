/**
 * GET /v1/search over a user's own titles and messages: every word, as prefixes, case and accents
 * ignored, best matches first, snippets with the offsets of the matched words; what users type is
 * data, never syntax.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { authServer, fakeOllama, json, sseEvents, takeText } from './support/app.ts'

async function searchFor(url: string, headers: Record<string, string>, q: string, extra = '') {
  const response = await fetch(`${url}/v1/search?q=${encodeURIComponent(q)}${extra}`, { headers })
  return { status: response.status, body: await json(response) }
}

test('search: every word as a prefix, accents and case ignored, titles and messages, best first, with highlights; someone else\'s never', async (t) => {
  const fake = await fakeOllama(t)
  const { url, app, userWithKey } = await authServer(t, fake)
  const ann = await userWithKey('ann')
  const bob = await userWithKey('bob')
  const sessionOf = async (ownerId: string, title: string, texts: string[]) => {
    const session = await app.store.createSession({ title, ownerId })
    const ids = await app.store.appendMessages(session.id, ownerId, texts.map((content, index) => ({ role: index % 2 ? 'assistant' as const : 'user' as const, content })))
    return { session, ids }
  }
  const paris = await sessionOf(ann.user.id, 'Trip plans', ['Un Café au lait à Paris, s\'il vous plaît', 'Paris has many cafés.'])
  const menu = await sessionOf(ann.user.id, 'CAFÉ menu ideas', ['What goes on a cafeteria menu?', 'Soup, bread and lager.'])
  await sessionOf(bob.user.id, 'Bob\'s café', ['café café café in Paris'])

  const cafe = await searchFor(url, ann.headers, 'cafe')
  assert.equal(cafe.status, 200)
  const found = cafe.body.results.map((result: any) => [result.session_title, result.message_id, result.role])
  assert.equal(found.length, 4, 'Café, cafés, cafeteria, and the title CAFÉ menu ideas: all of ann\'s, none of bob\'s')
  assert.ok(found.some(([title, id]: any) => title === 'CAFÉ menu ideas' && id === null), 'a title match has no message id')
  assert.ok(cafe.body.results.every((result: any) => result.session_id !== undefined && result.created_at))
  for (const result of cafe.body.results) {
    assert.ok(result.highlights.length >= 1)
    for (const [start, end] of result.highlights) assert.match(result.snippet.slice(start, end).normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase(), /^cafe/)
  }
  const first = cafe.body.results.find((result: any) => result.message_id === paris.ids[0])
  assert.equal(first.snippet, 'Un Café au lait à Paris, s\'il vous plaît')
  assert.deepEqual(first.highlights, [[3, 7]])

  const both = await searchFor(url, ann.headers, 'CAFE  paris')
  assert.deepEqual(both.body.results.map((result: any) => result.message_id).sort(), [paris.ids[0], paris.ids[1]].sort(), 'every word must match')
  assert.deepEqual(both.body.results[0].highlights, both.body.results[0].message_id === paris.ids[0] ? [[3, 7], [17, 22]] : [[0, 5], [15, 20]])

  // Best matches first, then newest.
  const ranked = await sessionOf(ann.user.id, 'Lamps', ['lighthouse lighthouse lighthouse', `${'a long message about many other things, '.repeat(10)}and one lighthouse`])
  const lighthouse = await searchFor(url, ann.headers, 'lighthouse')
  assert.equal(lighthouse.body.results[0].message_id, ranked.ids[0], 'the text with the word three times first')
  assert.equal(lighthouse.body.results.at(-1).message_id, ranked.ids[1])
  const long = lighthouse.body.results.at(-1)
  assert.ok(long.snippet.startsWith('…'), 'a long text is shown around its match')
  assert.equal(long.snippet.slice(long.highlights[0][0], long.highlights[0][1]), 'lighthouse')

  // Renames, deletes and other users' keys.
  await fetch(`${url}/v1/sessions/${menu.session.id}`, { method: 'PATCH', headers: { ...ann.headers, 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Soup ideas' }) })
  assert.equal((await searchFor(url, ann.headers, 'cafe')).body.results.filter((result: any) => result.message_id === null).length, 0, 'the old title is gone from the index')
  assert.equal((await searchFor(url, ann.headers, 'soup')).body.results.length, 2, 'the new title and the message')
  await fetch(`${url}/v1/sessions/${paris.session.id}`, { method: 'DELETE', headers: ann.headers })
  assert.equal((await searchFor(url, ann.headers, 'paris')).body.results.length, 0, 'a deleted session\'s messages are gone from the index')
  assert.equal((await searchFor(url, bob.headers, 'paris')).body.results.length, 1, 'bob finds only his own')
  assert.equal((await fetch(`${url}/v1/search?q=cafe`)).status, 401)
})

test('search: what users type is data: quotes, operators, NUL and 2,000 characters answer 200; paging by cursor; a streaming reply is not searched until stored', async (t) => {
  const fake = await fakeOllama(t)
  const { url, app, userWithKey } = await authServer(t, fake)
  const ann = await userWithKey('ann')
  const session = await app.store.createSession({ title: 'Notes', ownerId: ann.user.id })
  await app.store.appendMessages(session.id, ann.user.id, Array.from({ length: 25 }, (_, index) => ({ role: 'user' as const, content: `note number ${index} about zebras` })))
  for (const q of ['"zebras', 'zebras AND "', 'zeb*', 'NEAR(zebras note)', 'zebras OR', '\u0000zebras', `zebras ${'x'.repeat(1990)}`, ')(:*&|!', 'note:* & zebras']) {
    const { status, body } = await searchFor(url, ann.headers, q)
    assert.equal(status, 200, `q=${JSON.stringify(q.slice(0, 40))}`)
    assert.ok(Array.isArray(body.results))
  }
  assert.equal((await searchFor(url, ann.headers, 'x'.repeat(2001))).status, 400)
  assert.equal((await searchFor(url, ann.headers, '*** !!!')).body.results.length, 0, 'no words: nothing')

  const seen = new Set<string>()
  let cursor: string | null = null
  let pages = 0
  do {
    const page: any = (await searchFor(url, ann.headers, 'zebra', `&limit=10${cursor ? `&cursor=${cursor}` : ''}`)).body
    for (const result of page.results) seen.add(result.message_id)
    cursor = page.next_cursor
    pages++
  } while (cursor)
  assert.equal(seen.size, 25)
  assert.equal(pages, 3)
  assert.equal((await searchFor(url, ann.headers, 'zebra', '&cursor=bogus')).status, 400)

  fake.next({ tokens: ['quokka ', 'facts'], paced: true })
  fake.release(1)
  const live = sseEvents(await fetch(`${url}/v1/chat`, { method: 'POST', headers: { ...ann.headers, 'content-type': 'application/json' }, body: JSON.stringify({ message: 'tell me about marsupials' }) }))
  await takeText(live, 'quokka ')
  assert.equal((await searchFor(url, ann.headers, 'quokka')).body.results.length, 0, 'a reply still streaming is not searched')
  fake.release(2)
  for await (const _ of live) { /* to its end */ }
  const stored = await searchFor(url, ann.headers, 'quokka')
  assert.equal(stored.body.results.length, 1)
  assert.equal(stored.body.results[0].snippet, 'quokka facts')
})

test('search: a message\'s first 100,000 characters are indexed; a snippet comes from its first 20,000, around the first match there', async (t) => {
  const fake = await fakeOllama(t)
  const { url, app, userWithKey } = await authServer(t, fake, { MAX_MESSAGE_CHARS: '200000' })
  const ann = await userWithKey('ann')
  const session = await app.store.createSession({ title: 'Long notes', ownerId: ann.user.id })
  const filler = (chars: number) => 'lorem ipsum dolor '.repeat(Math.ceil(chars / 18)).slice(0, chars)
  const text = `${filler(15_000)} kestrel nest ${filler(80_000)} osprey ${filler(10_000)} zeppelin`
  const [id] = await app.store.appendMessages(session.id, ann.user.id, [{ role: 'user', content: text }])
  const found = (q: string) => searchFor(url, ann.headers, q).then(({ body }) => body.results.filter((result: any) => result.message_id === id))
  const [kestrel] = await found('kestrel')
  assert.ok(kestrel, 'a word in the first 20,000 characters')
  assert.deepEqual(kestrel.highlights.map(([start, end]: [number, number]) => kestrel.snippet.slice(start, end)), ['kestrel'])
  assert.ok(kestrel.snippet.length < 300, 'a snippet, not the text')
  const [osprey] = await found('osprey')
  assert.ok(osprey, 'a word past 20,000 characters but within 100,000 is found')
  assert.ok(osprey.snippet.startsWith('lorem ipsum') && osprey.highlights.length === 0, 'its snippet is the start, unmarked')
  assert.deepEqual(await found('zeppelin'), [], 'past 100,000 characters a word is not indexed')
})

test('search: a reply is indexed once it is no longer streaming, however it ended: checkpoints index nothing, an interrupted reply is found', async (t) => {
  const fake = await fakeOllama(t)
  const { url, app, userWithKey } = await authServer(t, fake)
  const ann = await userWithKey('ann')
  const sessionId = crypto.randomUUID()
  const turn = await app.store.beginTurn({ sessionId, ownerId: ann.user.id, content: 'tell me about birds', model: 'llama3.2' })
  await app.store.checkpointReply(turn.reply.id, 'the pelican dives')
  const pelicans = async () => (await searchFor(url, ann.headers, 'pelican')).body.results.map((result: any) => result.message_id)
  assert.deepEqual(await pelicans(), [], 'streaming: not searched')
  await app.store.checkpointReply(turn.reply.id, 'the pelican dives for fish')
  assert.equal(await app.store.interruptStreamingReplies(), 1)
  assert.deepEqual(await pelicans(), [turn.reply.id], 'interrupted with its checkpointed text: found')
  assert.equal(await app.store.deleteSession(sessionId, ann.user.id), 'deleted')
  assert.deepEqual(await pelicans(), [], 'deleted: gone from the index too')
})
