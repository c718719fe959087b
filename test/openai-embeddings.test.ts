/**
 * POST /v1/embeddings and the Files API with the official `openai` SDK (base64, its default, and float) and
 * LangChain's OpenAIEmbeddings as the clients, against the fake Ollama's /api/embed.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import OpenAI, { toFile } from 'openai'
import { OpenAIEmbeddings } from '@langchain/openai'
import { fakeOllama, testServer } from './support/app.ts'
import { DEFAULT_MODELS, EMBED_DIMENSIONS, embeddingOf } from './support/fake-ollama.ts'

const EMBED = 'nomic-embed-text:latest'

async function embeddingServer(t: TestContext, env: Record<string, string> = {}) {
  const fake = await fakeOllama(t, { models: [...DEFAULT_MODELS, EMBED] })
  const server = await testServer(t, fake, env)
  return { fake, server, client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0 }) }
}

const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let dot = 0
  for (let index = 0; index < a.length; index++) dot += a[index]! * b[index]!
  return dot
}

test('the SDK embeds one text and several, in order, as Ollama made them (base64 by default, float on request)', async (t) => {
  const { fake, client } = await embeddingServer(t)
  const one = await client.embeddings.create({ model: 'nomic-embed-text', input: 'the cat sat on the mat' })
  assert.equal(one.object, 'list')
  assert.equal(one.data.length, 1)
  assert.equal(one.data[0]!.embedding.length, EMBED_DIMENSIONS)
  assert.ok(cosine(one.data[0]!.embedding, embeddingOf('the cat sat on the mat')) > 0.9999)
  assert.equal(one.usage.prompt_tokens, 6)
  assert.equal(fake.requests.filter((request) => request.path === '/api/embed').at(-1)!.body.model, 'nomic-embed-text')

  const texts = ['a recipe for bread', 'the cat sat on the mat', 'bread with butter']
  const several = await client.embeddings.create({ model: 'nomic-embed-text', input: texts, encoding_format: 'float' })
  assert.deepEqual(several.data.map((item) => item.index), [0, 1, 2])
  for (const [index, text] of texts.entries()) assert.ok(cosine(several.data[index]!.embedding, embeddingOf(text)) > 0.9999)
  // Texts that share words are nearer than texts that do not.
  assert.ok(cosine(several.data[0]!.embedding, several.data[2]!.embedding) > cosine(several.data[0]!.embedding, several.data[1]!.embedding))
})

test('LangChain\'s OpenAIEmbeddings embeds documents and a query against the server', async (t) => {
  const { server } = await embeddingServer(t)
  const embeddings = new OpenAIEmbeddings({ model: 'nomic-embed-text', apiKey: 'local', configuration: { baseURL: `${server.url}/v1` }, maxRetries: 0 })
  const documents = await embeddings.embedDocuments(['bread and butter', 'cats and dogs'])
  const query = await embeddings.embedQuery('butter on bread')
  assert.equal(documents.length, 2)
  assert.ok(cosine(query, documents[0]!) > cosine(query, documents[1]!))
})

test('what cannot be honoured is a 400 naming its param; a chat model, a disallowed one and an unknown one are refused as OpenAI does', async (t) => {
  const { fake, client } = await embeddingServer(t, { ALLOWED_MODELS: 'llama3.2' })
  const refusal = async (body: Record<string, unknown>, param: string | null, status = 400) => {
    await assert.rejects(client.embeddings.create(body as any), (error: any) => {
      assert.equal(error.status, status, JSON.stringify(error.error))
      assert.equal(error.param ?? null, param)
      return true
    })
  }
  const before = fake.requests.filter((request) => request.path === '/api/embed').length
  await refusal({ model: 'nomic-embed-text', input: 'x', dimensions: 256 }, 'dimensions')
  await refusal({ model: 'nomic-embed-text', input: [[1, 2, 3]] }, 'input')
  await refusal({ model: 'nomic-embed-text', input: [] }, 'input')
  await refusal({ model: 'nomic-embed-text', input: ['fine', ''] }, 'input')
  await refusal({ model: 'qwen3:8b', input: 'x' }, 'model', 404)
  await refusal({ model: 'llama3.2', input: 'x' }, null)
  assert.equal(await client.embeddings.create({ model: 'nomic-embed-text', input: 'x', dimensions: EMBED_DIMENSIONS }).then((answer) => answer.data[0]!.embedding.length), EMBED_DIMENSIONS)
  // Only the call with the model's own size reached Ollama's /api/embed besides the one refused for dimensions.
  assert.equal(fake.requests.filter((request) => request.path === '/api/embed').length - before, 2)
})

test('the SDK\'s Files API: create (multipart), list, retrieve, content and delete, in OpenAI\'s shapes', async (t) => {
  const { client } = await embeddingServer(t)
  const created = await client.files.create({ file: await toFile(Buffer.from('# Notes\n\nThe meeting is on Tuesday.\n'), 'notes.md'), purpose: 'assistants' })
  assert.deepEqual([created.object, created.filename, created.purpose, created.bytes, created.status], ['file', 'notes.md', 'assistants', 36, 'uploaded'])
  assert.equal(typeof created.created_at, 'number')
  const listed = await client.files.list()
  assert.deepEqual(listed.data.map((file) => file.id), [created.id])
  assert.equal((await client.files.retrieve(created.id)).filename, 'notes.md')
  assert.equal(await (await client.files.content(created.id)).text(), '# Notes\n\nThe meeting is on Tuesday.\n')
  assert.deepEqual(await client.files.delete(created.id), { id: created.id, object: 'file', deleted: true })
  await assert.rejects(client.files.retrieve(created.id), (error: any) => error instanceof OpenAI.NotFoundError)
})
