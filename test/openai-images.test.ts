/**
 * Images through the OpenAI surface, with the official SDK as the client: Chat Completions
 * `image_url` parts and Responses `input_image` parts go through the same checks as POST
 * /v1/chat; stored responses and conversations keep them in the attachments table and send them
 * again on later turns. On both backends (STORE=postgres runs this file too).
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI from 'openai'
import { fakeOllama, json, storedRows, testServer } from './support/app.ts'
import { dataUrl, imageFacts, jpegWithExif, largeJpeg, pngFile } from './support/images.ts'

const VISION = 'gemma3:4b'

async function openAI(t: TestContext) {
  const fake = await fakeOllama(t, { models: ['llama3.2:latest', VISION], capabilities: { [VISION]: ['completion', 'vision'] } })
  const server = await testServer(t, fake)
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 })
  return { fake, server, client }
}

/** The images of each message of Ollama's last chat request (base64), and their facts. */
const lastSentImages = (fake: Awaited<ReturnType<typeof openAI>>['fake']) =>
  fake.chatRequests().at(-1)!.body.messages.map((message: any) => (message.images ?? []) as string[])

test('Chat Completions: an image_url data URL reaches Ollama re-encoded on its message; an http URL, SVG or a model that cannot see is a 400 with its param', async (t) => {
  const { fake, client } = await openAI(t)
  const photo = await jpegWithExif(64, 32, 6)
  const completion = await client.chat.completions.create({
    model: VISION,
    messages: [
      { role: 'system', content: 'Describe images.' },
      { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: dataUrl(photo, 'image/jpeg'), detail: 'low' } }] },
    ],
  })
  assert.equal(completion.choices[0]!.message.content, 'You said: What is this?')
  const sent = lastSentImages(fake)
  assert.deepEqual(sent.map((images: string[]) => images.length), [0, 1])
  const facts = await imageFacts(Buffer.from(sent[1][0], 'base64'))
  assert.deepEqual([facts.format, facts.width, facts.height, facts.exif], ['jpeg', 32, 64, false], 'upright and without EXIF')

  const refusals: Array<[unknown, string, RegExp]> = [
    [[{ type: 'image_url', image_url: { url: 'http://169.254.169.254/latest/meta-data' } }], 'messages[0].content[0].image_url.url', /never fetches/],
    [[{ type: 'image_url', image_url: { url: dataUrl(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'image/svg+xml') } }], 'messages[0].content[0].image_url.url', /not a PNG, JPEG, WebP or GIF/],
  ]
  for (const [content, param, message] of refusals) {
    await assert.rejects(client.chat.completions.create({ model: VISION, messages: [{ role: 'user', content: content as any }] }), (error: any) => {
      assert.ok(error instanceof OpenAI.BadRequestError)
      assert.equal(error.param, param)
      assert.match(error.message, message)
      return true
    })
  }
  await assert.rejects(
    client.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl(pngFile(8, 8)) } }] }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && /cannot see images/.test(error.message),
  )
  // Images belong to user messages.
  await assert.rejects(
    client.chat.completions.create({ model: VISION, messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: dataUrl(pngFile(8, 8)) } }] as any }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'messages[0].content[0]',
  )
  assert.equal(fake.chatRequests().length, 1, 'nothing refused reached Ollama')
})

test('Responses: input_image is stored with the response, listed by input_items, and sent again along previous_response_id; another user cannot read it', async (t) => {
  const { fake, server, client } = await openAI(t)
  const first = await client.responses.create({
    model: VISION,
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'What colour?' }, { type: 'input_image', image_url: dataUrl(pngFile(40, 20)), detail: 'auto' }] }],
  })
  assert.equal(first.status, 'completed')
  const items = await client.responses.inputItems.list(first.id)
  const parts = (items.data[0] as any).content
  assert.equal(parts[1].type, 'input_image')
  assert.match(parts[1].image_url, /^\/v1\/attachments\/[0-9a-f-]{36}$/)
  const served = await fetch(`${server.url}${parts[1].image_url}`)
  assert.equal(served.headers.get('content-type'), 'image/png')
  assert.deepEqual([(await imageFacts(Buffer.from(await served.arrayBuffer()))).width], [40])
  // No image bytes in the stored request: only the listing.
  const [request] = await storedRows(server.app, 'SELECT input FROM response_requests WHERE response_id = ?', first.id)
  assert.ok(String(typeof request.input === 'string' ? request.input : JSON.stringify(request.input)).length < 500)

  // A body of megabytes (read by a worker thread): the same answer.
  const photo = await largeJpeg(1024 * 1024)
  const large = await client.responses.create({ model: VISION, input: [{ role: 'user', content: [{ type: 'input_text', text: 'And this?' }, { type: 'input_image', image_url: dataUrl(photo, 'image/jpeg'), detail: 'auto' }] }] })
  assert.equal(large.status, 'completed')
  assert.equal(((await client.responses.inputItems.list(large.id)).data[0] as any).content[1].type, 'input_image')
  const imageId = parts[1].image_url.split('/').at(-1)
  assert.equal(await server.app.store.getAttachment(imageId, 'someone-else'), undefined)

  await client.responses.create({ model: VISION, previous_response_id: first.id, input: 'And its shape?' })
  const sent = lastSentImages(fake)
  assert.deepEqual(sent.map((images: string[]) => images.length), [1, 0, 0], 'the first question keeps its image')

  await assert.rejects(
    client.responses.create({ model: VISION, input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://example.com/cat.png', detail: 'auto' }] }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'input[0].content[0].image_url' && /never fetches/.test(error.message),
  )
  await assert.rejects(
    client.responses.create({ model: VISION, input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'file-abc', detail: 'auto' }] }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'input[0].content[0].file_id',
  )
})

test('Responses in a conversation: the image is stored on the conversation\'s message, listed as an item part, and resent on the next turn', async (t) => {
  const { fake, server, client } = await openAI(t)
  const conversation = await client.conversations.create({})
  await client.responses.create({
    model: VISION,
    conversation: conversation.id,
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'Look' }, { type: 'input_image', image_url: dataUrl(pngFile(16, 16)), detail: 'auto' }] }],
  })
  const items = await client.conversations.items.list(conversation.id, { order: 'asc' })
  const user = items.data.find((item: any) => item.role === 'user') as any
  assert.equal(user.content[1].type, 'input_image')
  const item = await client.conversations.items.retrieve(user.id, { conversation_id: conversation.id }) as any
  assert.deepEqual(item.content[1], user.content[1])
  assert.equal((await fetch(`${server.url}${user.content[1].image_url}`)).status, 200)
  await client.responses.create({ model: VISION, conversation: conversation.id, input: 'Again?' })
  assert.deepEqual(lastSentImages(fake).map((images: string[]) => images.length), [1, 0, 0])
  assert.equal(Number((await storedRows(server.app, 'SELECT count(*) AS n FROM attachments'))[0].n), 1, 'stored once')
  const [response] = (await client.responses.inputItems.list((await client.responses.create({ model: VISION, conversation: conversation.id, input: 'Once more' })).id)).data as any[]
  assert.equal(response.content.length, 1)
  // Conversation items take text: images go with a response.
  await assert.rejects(
    client.conversations.items.create(conversation.id, { items: [{ type: 'message', role: 'user', content: [{ type: 'input_image', image_url: dataUrl(pngFile(8, 8)), detail: 'auto' }] }] }),
    (error: any) => error instanceof OpenAI.BadRequestError && error.param === 'items[0].content[0]' && /POST \/v1\/responses/.test(error.message),
  )
  // The session API lists it too.
  const sessions = await json(await fetch(`${server.url}/v1/sessions`))
  const listed = await json(await fetch(`${server.url}/v1/sessions/${sessions.sessions[0].id}/messages`))
  assert.equal(listed.messages.find((message: any) => message.role === 'user').images.length, 1)
})
