/**
 * Images (docs/images.md): sent with a message, typed by their bytes, re-encoded without
 * metadata, stored apart from the messages, served to their owner only, and shown to vision
 * models only. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import attachmentGet from '../functions/attachment-get.ts'
import chat from '../functions/chat.ts'
import importFile from '../functions/import.ts'
import sessionExport from '../functions/session-export.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionMessages from '../functions/session-messages.ts'
import type { AppContext } from '../lib/context.ts'
import { authServer, chatRequest, fakeOllama, json, rowCounts, storedRows, testApp, testServer, toRequest } from './support/app.ts'
import type { FakeOllama } from './support/fake-ollama.ts'
import { ImageGate } from '../lib/images/image-gate.ts'
import { dataUrl, gifFile, imageFacts, jpegWithExif, largeJpeg, pngFile, pngHeaderOnly, webpFile } from './support/images.ts'

const VISION = 'gemma3:4b'
const visionOllama = (t: Parameters<typeof fakeOllama>[0]) =>
  fakeOllama(t, { models: ['llama3.2:latest', VISION], capabilities: { [VISION]: ['completion', 'vision'] } })

const messagesOf = async (app: AppContext, sessionId: string) =>
  (await json(await sessionMessages.fetch(toRequest(`GET /v1/sessions/${sessionId}/messages`), app))).messages
const attachmentCount = async (app: AppContext) => Number((await storedRows(app, 'SELECT count(*) AS n FROM attachments'))[0]!.n)
const sentImages = (fake: FakeOllama, chatIndex = -1) => fake.chatRequests().at(chatIndex)!.body.messages.map((message: any) => message.images ?? [])
const bytesOf = async (response: Response) => Buffer.from(await response.arrayBuffer())

test('an image of each accepted type is stored re-encoded, listed on its message, served to its owner, and sent to Ollama as plain base64', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const files = [pngFile(40, 20), await jpegWithExif(30, 30), await webpFile(24, 12), await gifFile(16, 16)]
  // Labels are ignored: the WebP file says it is a PNG, and one image is bare base64.
  const images = [dataUrl(files[0]!), dataUrl(files[1]!, 'image/jpeg'), dataUrl(files[2]!, 'image/png'), Buffer.from(files[3]!).toString('base64')]
  const answer = await json(await chat.fetch(chatRequest({ message: 'What is in these?', model: VISION, images, stream: false }), app))
  assert.ok(answer.id, JSON.stringify(answer))

  const [user] = (await messagesOf(app, answer.session_id)).filter((message: any) => message.role === 'user')
  assert.deepEqual(user.images.map((image: any) => [image.media_type, image.width, image.height]), [
    ['image/png', 40, 20], ['image/jpeg', 30, 30], ['image/webp', 24, 12], ['image/png', 16, 16],
  ])
  for (const image of user.images) {
    assert.equal(image.url, `/v1/attachments/${image.id}`)
    const served = await attachmentGet.fetch(toRequest(`GET ${image.url}`), app)
    assert.equal(served.status, 200)
    assert.equal(served.headers.get('content-type'), image.media_type)
    assert.equal(served.headers.get('x-content-type-options'), 'nosniff')
    assert.match(served.headers.get('cache-control')!, /^private\b/)
    assert.match(served.headers.get('content-security-policy')!, /default-src 'none'/)
    assert.match(served.headers.get('content-security-policy')!, /sandbox/)
    const bytes = await bytesOf(served)
    assert.equal(bytes.byteLength, image.bytes)
    assert.equal((await imageFacts(bytes)).format, image.media_type === 'image/jpeg' ? 'jpeg' : image.media_type.slice(6))
  }
  // Ollama got the stored bytes, base64 without a data: prefix, on the message they belong to.
  const sent = sentImages(fake)
  assert.deepEqual(sent.map((list: string[]) => list.length), [0, 4].slice(-sent.length))
  const storedFirst = await bytesOf(await attachmentGet.fetch(toRequest(`GET ${user.images[0].url}`), app))
  assert.equal(sent.at(-1)[0], storedFirst.toString('base64'))
  // The other messages list no images; rows of messages hold no image bytes.
  assert.ok((await messagesOf(app, answer.session_id)).every((message: any) => message.role === 'user' || message.images.length === 0))
  const [row] = await storedRows(app, 'SELECT length(content) AS n FROM messages WHERE id = ?', user.id)
  assert.equal(Number(row.n), 'What is in these?'.length)
})

test('images are scaled to IMAGE_MAX_SIDE, turned upright, and stripped of EXIF, GPS and PNG text', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake, { IMAGE_MAX_SIDE: '64' })
  const png = pngFile(300, 100, { Comment: 'png-text-secret', 'XML:com.adobe.xmp': 'xmp-secret' })
  const rotated = await jpegWithExif(80, 40, 6)
  assert.ok(png.includes('png-text-secret') && rotated.includes('exif-artist-secret'), 'the inputs carry metadata')
  const answer = await json(await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(png), dataUrl(rotated)], stream: false }), app))
  const [user] = (await messagesOf(app, answer.session_id)).filter((message: any) => message.role === 'user')
  assert.deepEqual(user.images.map((image: any) => [image.width, image.height]), [[64, 21], [32, 64]])
  for (const image of user.images) {
    const bytes = await bytesOf(await attachmentGet.fetch(toRequest(`GET ${image.url}`), app))
    const facts = await imageFacts(bytes)
    assert.deepEqual([facts.exif, facts.xmp, facts.comments], [false, false, []])
    for (const secret of ['png-text-secret', 'xmp-secret', 'exif-artist-secret', 'GPS']) assert.ok(!bytes.includes(secret), `${secret} is gone`)
  }
})

test('anything but a PNG, JPEG, WebP or GIF is refused with 400 naming the image, before anything is stored', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const png = pngFile(20, 20)
  const refused: Array<[string, unknown, RegExp]> = [
    ['HTML labelled image/png', dataUrl(Buffer.from('<html><script>alert(1)</script></html>')), /not a PNG, JPEG, WebP or GIF/],
    ['SVG', dataUrl(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'), 'image/svg+xml'), /not a PNG, JPEG, WebP or GIF/],
    ['a truncated PNG', dataUrl(png.subarray(0, png.length - 40)), /not a readable PNG/],
    ['not base64', 'data:image/png;base64,@@not*base64@@', /not valid base64/],
    ['a data URL that is not base64', 'data:image/png,%89PNG', /base64 data URL/],
    ['a number', 42, /must be a string/],
    ['a 100-megapixel header (a decompression bomb)', dataUrl(pngHeaderOnly(10_000, 10_000)), /IMAGE_MAX_PIXELS/],
  ]
  for (const [what, image, detail] of refused) {
    const response = await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(png), image] }), app)
    assert.equal(response.status, 400, what)
    const problem = await json(response)
    assert.match(problem.detail, /^images\[1\] /, what)
    assert.match(problem.detail, detail, what)
  }
  const tooMany = await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: Array(5).fill(dataUrl(png)) }), app)
  assert.equal(tooMany.status, 400)
  assert.match((await json(tooMany)).detail, /MAX_IMAGES_PER_MESSAGE/)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(await attachmentCount(app), 0)
  assert.equal(fake.chatRequests().length, 0)
})

test('an image over MAX_IMAGE_BYTES is refused with 413 naming it', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake, { MAX_IMAGE_BYTES: '1KiB' })
  const response = await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(pngFile(200, 200))] }), app)
  assert.equal(response.status, 413)
  assert.match((await json(response)).detail, /^images\[0\] is \d+ bytes; at most 1024 .*MAX_IMAGE_BYTES/)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
})

test('a model without the vision capability is refused with 400 model_capability before anything is stored', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const response = await chat.fetch(chatRequest({ message: 'Look', model: 'llama3.2', images: [dataUrl(pngFile(20, 20))] }), app)
  assert.equal(response.status, 400)
  const problem = await json(response)
  assert.equal(problem.type, 'https://api.chat-ollama.com/errors/model_capability')
  assert.match(problem.detail, /llama3\.2 cannot see images.*'vision'/)
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 })
  assert.equal(fake.chatRequests().length, 0)
  // The capabilities are asked once per model, then known.
  await chat.fetch(chatRequest({ message: 'Look', model: 'llama3.2', images: [dataUrl(pngFile(20, 20))] }), app)
  assert.equal(fake.requests.filter((request) => request.path === '/api/show').length, 1)
})

test('an http(s) image URL is refused with 400, and no request leaves the server', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  let fetched = 0
  const target = createServer((_req, res) => {
    fetched++
    res.end()
  })
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise((resolve) => target.close(resolve)))
  const url = `http://127.0.0.1:${(target.address() as AddressInfo).port}/cat.png`
  for (const image of [url, url.replace('http:', 'https:')]) {
    const response = await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [image] }), app)
    assert.equal(response.status, 400)
    assert.match((await json(response)).detail, /^images\[0\] is a URL; the server never fetches/)
  }
  assert.equal(fetched, 0)
  assert.equal(fake.chatRequests().length, 0)
})

test('later turns resend the images of the messages they send, each counted at a fixed cost in the context estimate', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'What is this?', model: VISION, images: [dataUrl(pngFile(20, 20))], stream: false }), app))
  const plain = await json(await chat.fetch(chatRequest({ message: 'Plain text', model: VISION, stream: false }), app))
  // Two prompts of a short message each: the one with an image is estimated an image's cost above.
  assert.ok(first.context.estimated_tokens - plain.context.estimated_tokens >= 760, JSON.stringify([first.context, plain.context]))
  const second = await json(await chat.fetch(chatRequest({ message: 'And its colour?', model: VISION, session_id: first.session_id, stream: false }), app))
  assert.ok(second.context.estimated_tokens >= 768, JSON.stringify(second.context))
  const sent = sentImages(fake)
  assert.deepEqual(sent.map((list: string[]) => list.length), [1, 0, 0])
  assert.equal(sent[0][0], sentImages(fake, 0).at(-1)[0])
})

test('deleting a session deletes its images', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const answer = await json(await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(pngFile(20, 20)), dataUrl(pngFile(10, 10))], stream: false }), app))
  assert.equal(await attachmentCount(app), 2)
  assert.equal((await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${answer.session_id}`), app)).status, 204)
  assert.equal(await attachmentCount(app), 0)
})

test('over a socket: a 3 MiB photo is taken with the default limits (the body limit of /v1/chat grows with its images); other routes keep MAX_BODY_BYTES', async (t) => {
  const fake = await visionOllama(t)
  const server = await testServer(t, fake)
  const photo = await largeJpeg(3 * 1024 * 1024)
  const response = await fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'What is this?', model: VISION, images: [dataUrl(photo, 'image/jpeg')], stream: false }),
  })
  assert.equal(response.status, 200, await response.clone().text())
  const [user] = (await json(await fetch(`${server.url}/v1/sessions/${(await json(response)).session_id}/messages`))).messages
  assert.equal(Math.max(user.images[0].width, user.images[0].height), 1568)
  const elsewhere = await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'x'.repeat(2 * 1024 * 1024) }) })
  assert.equal(elsewhere.status, 413)
})

test('attachments are their owner\'s: another user gets 404 as for a missing id, no credentials get 401', async (t) => {
  const fake = await visionOllama(t)
  const server = await authServer(t, fake)
  const alice = await server.userWithKey('alice')
  const bob = await server.userWithKey('bob')
  const posted = await fetch(`${server.url}/v1/chat`, {
    method: 'POST',
    headers: { ...alice.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ message: 'Mine', model: VISION, images: [dataUrl(pngFile(20, 20))], stream: false }),
  })
  const sessionId = (await json(posted)).session_id
  const [user] = (await json(await fetch(`${server.url}/v1/sessions/${sessionId}/messages`, { headers: alice.headers }))).messages
  const url = `${server.url}${user.images[0].url}`
  assert.equal((await fetch(url, { headers: alice.headers })).status, 200)
  const other = await fetch(url, { headers: bob.headers })
  const missing = await fetch(`${server.url}/v1/attachments/00000000-0000-4000-8000-000000000000`, { headers: bob.headers })
  assert.deepEqual([other.status, missing.status], [404, 404])
  const [otherProblem, missingProblem] = [await json(other), await json(missing)]
  assert.equal(otherProblem.type, missingProblem.type)
  assert.equal(otherProblem.detail.replace(user.images[0].id, 'ID'), missingProblem.detail.replace('00000000-0000-4000-8000-000000000000', 'ID'))
  assert.equal((await fetch(url)).status, 401)
})

test('exports carry images as base64 and imports restore them through the same checks; a file whose image is not one is skipped saying why', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const answer = await json(await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(pngFile(40, 20, { Comment: 'png-text-secret' }))], stream: false }), app))
  const exported = await json(await sessionExport.fetch(toRequest(`GET /v1/sessions/${answer.session_id}/export`), app))
  const [user] = exported.messages.filter((message: any) => message.role === 'user')
  assert.deepEqual(user.images.map((image: any) => [image.media_type, image.width, image.height]), [['image/png', 40, 20]])
  const markdown = await (await sessionExport.fetch(toRequest(`GET /v1/sessions/${answer.session_id}/export?format=markdown`), app)).text()
  assert.match(markdown, /\*\[image: image\/png, 40×20\]\*/)

  await sessionDelete.fetch(toRequest(`DELETE /v1/sessions/${answer.session_id}`), app)
  const result = await json(await importFile.fetch(toRequest('POST /v1/import', exported), app))
  assert.equal(result.imported.length, 1, JSON.stringify(result))
  const [restored] = (await messagesOf(app, result.imported[0].session_id)).filter((message: any) => message.role === 'user')
  assert.deepEqual(restored.images.map((image: any) => [image.media_type, image.width, image.height]), [['image/png', 40, 20]])
  const bytes = await bytesOf(await attachmentGet.fetch(toRequest(`GET ${restored.images[0].url}`), app))
  assert.equal(bytes.toString('base64'), user.images[0].data)
  // The restored image goes to the model with the conversation's next turn.
  await json(await chat.fetch(chatRequest({ message: 'Again', model: VISION, session_id: result.imported[0].session_id, stream: false }), app))
  assert.deepEqual(sentImages(fake).map((list: string[]) => list.length), [1, 0, 0])

  const forged = structuredClone(exported)
  forged.session.id = '11111111-1111-4111-8111-111111111111'
  forged.messages.find((message: any) => message.role === 'user').images[0].data = Buffer.from('<html><script>alert(1)</script></html>').toString('base64')
  const before = await attachmentCount(app)
  const refused = await json(await importFile.fetch(toRequest('POST /v1/import', forged), app))
  assert.deepEqual(refused.imported, [])
  assert.match(refused.skipped[0].reason, /^message \d+, image 1, is not a PNG, JPEG, WebP or GIF/)
  assert.equal(await attachmentCount(app), before, 'nothing of it is kept')
})

test('a body of megabytes is read off the event loop: the same checks and answers as a small one, a retry with its Idempotency-Key replays', async (t) => {
  const fake = await visionOllama(t)
  const server = await testServer(t, fake)
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const photo = await largeJpeg(1024 * 1024)
  const notBase64 = `data:image/jpeg;base64,${'A'.repeat(400_000)}*${'A'.repeat(3)}`
  const bad = await post({ message: 'Look', model: VISION, images: [dataUrl(photo, 'image/jpeg'), notBase64] })
  assert.equal(bad.status, 400)
  assert.match((await json(bad)).detail, /^images\[1\] is not valid base64/)
  const broken = await post(`{"message":"Look","images":["${'A'.repeat(400_000)}"`)
  assert.equal(broken.status, 400)
  assert.match((await json(broken)).detail, /^The body is not valid JSON/)
  const withNul = await post({ message: 'Look\u0000', images: ['A'.repeat(400_000)] })
  assert.equal(withNul.status, 400)
  assert.match((await json(withNul)).detail, /U\+0000/)
  assert.equal(fake.chatRequests().length, 0)

  const body = { message: 'What is it?', model: VISION, stream: false, images: [Buffer.from(photo).toString('base64')] }
  const first = await json(await post(body, { 'idempotency-key': 'photo-1' }))
  const again = await json(await post(body, { 'idempotency-key': 'photo-1' }))
  assert.equal(again.id, first.id)
  assert.equal(fake.chatRequests().length, 1, 'Ollama was asked once')
  const other = await post({ ...body, images: [dataUrl(pngFile(600, 600), 'image/png')] }, { 'idempotency-key': 'photo-1' })
  assert.equal(other.status, 422, 'another image is another request')
})

test('faults: Ollama down when images come is a 503 with nothing stored; a client that leaves mid-upload costs nothing and the server goes on', async (t) => {
  const down = await testApp(t, null)
  const refused = await chat.fetch(chatRequest({ message: 'Look', model: VISION, images: [dataUrl(pngFile(20, 20))] }), down)
  assert.equal(refused.status, 503)
  assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/ollama')
  assert.deepEqual(await rowCounts(down), { sessions: 0, messages: 0 })

  const fake = await visionOllama(t)
  const server = await testServer(t, fake)
  const { request } = await import('node:http')
  const photo = dataUrl(await largeJpeg(1024 * 1024), 'image/jpeg')
  const body = JSON.stringify({ message: 'Look', model: VISION, images: [photo], stream: false })
  // Half of a body past 256 KiB (so its worker has started), then the connection is gone.
  await new Promise<void>((resolve) => {
    const partial = request(`${server.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(body.length) } })
    partial.on('error', () => resolve())
    partial.write(body.slice(0, body.length / 2), () => {
      partial.destroy()
      resolve()
    })
  })
  const whole = await fetch(`${server.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  assert.equal(whole.status, 200)
  assert.equal(await attachmentCount(server.app), 1, 'only the whole request stored an image')
  assert.equal(fake.chatRequests().length, 1)
})

test('an edit keeps the edited question\'s images unless it sends its own (an empty list: none)', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake)
  const first = await json(await chat.fetch(chatRequest({ message: 'What is it?', model: VISION, images: [dataUrl(pngFile(40, 20))], stream: false }), app))
  const [question] = (await messagesOf(app, first.session_id)).filter((message: any) => message.role === 'user')
  const edit = (body: Record<string, unknown>) => chat.fetch(chatRequest({ message: 'What colour is it?', model: VISION, session_id: first.session_id, edit_of: question.id, stream: false, ...body }), app)

  assert.equal((await edit({})).status, 200)
  const [kept] = (await messagesOf(app, first.session_id)).filter((message: any) => message.role === 'user')
  assert.notEqual(kept.id, question.id)
  assert.deepEqual(kept.images.map((image: any) => [image.media_type, image.width, image.height, image.bytes]), question.images.map((image: any) => [image.media_type, image.width, image.height, image.bytes]))
  assert.deepEqual(sentImages(fake).map((list: string[]) => list.length), [1], 'the model sees it with the new version')

  assert.equal((await edit({ images: [] })).status, 200)
  const [bare] = (await messagesOf(app, first.session_id)).filter((message: any) => message.role === 'user')
  assert.deepEqual(bare.images, [])
  assert.deepEqual(sentImages(fake).map((list: string[]) => list.length), [0])
  // A model that cannot see is refused for the kept images too, before anything is stored.
  const before = await rowCounts(app)
  const refused = await edit({ model: 'llama3.2' })
  assert.equal(refused.status, 400)
  assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/model_capability')
  assert.deepEqual(await rowCounts(app), before)
})

test('a long chat of photos: the context budget counts each image, cuts whole old turns, and only the turns sent carry their images', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake, { DEFAULT_NUM_CTX: '4096' })
  let sessionId: string | undefined
  const answers = []
  for (let turn = 0; turn < 6; turn++) {
    const answer = await json(await chat.fetch(chatRequest({ message: `Photo ${turn}?`, model: VISION, session_id: sessionId, images: [dataUrl(pngFile(20 + turn, 20))], stream: false }), app))
    sessionId = answer.session_id
    answers.push(answer)
  }
  const last = answers.at(-1)
  assert.ok(last.context.dropped_messages > 0, JSON.stringify(last.context))
  assert.ok(last.context.estimated_tokens <= last.context.budget_tokens, JSON.stringify(last.context))
  const sent = fake.chatRequests().at(-1)!.body.messages
  // Every user message sent still carries its own image, and no more images than fit went.
  assert.deepEqual(sent.filter((message: any) => message.role === 'user').map((message: any) => message.images?.length), sent.filter((message: any) => message.role === 'user').map(() => 1))
  assert.ok(sent.filter((message: any) => message.role === 'user').length < 6)
  assert.equal(sent.at(-1).content, 'Photo 5?')
})

test('images are processed a few at a time per instance (IMAGE_CONCURRENCY): the rest wait their turn; past the queue, 503 with Retry-After and nothing stored', async (t) => {
  const fake = await visionOllama(t)
  const app = await testApp(t, fake, {}, undefined, { imageGate: new ImageGate(1, 2) })
  // Its one turn is taken until released.
  const release = Promise.withResolvers<void>()
  const holding = app.imageGate.run(() => release.promise)
  const image = dataUrl(pngFile(8, 8))
  const waiting = [1, 2].map((index) => chat.fetch(chatRequest({ message: `look ${index}`, model: VISION, images: [image], stream: false }), app))
  while (app.imageGate.load.waiting < 2) await new Promise((resolve) => setImmediate(resolve))
  const refused = await chat.fetch(chatRequest({ message: 'and this', model: VISION, images: [image], stream: false }), app)
  assert.equal(refused.status, 503)
  assert.ok(Number(refused.headers.get('retry-after')) > 0)
  assert.equal((await json(refused)).type, 'https://api.chat-ollama.com/errors/busy')
  assert.deepEqual(await rowCounts(app), { sessions: 0, messages: 0 }, 'nothing stored while the others wait')
  release.resolve()
  await holding
  for (const answered of await Promise.all(waiting)) assert.equal(answered.status, 200)
  assert.deepEqual(app.imageGate.load, { running: 0, waiting: 0 })
  assert.equal(await attachmentCount(app), 2)
})
