/**
 * A fake Ollama: a real HTTP server on loopback that speaks Ollama's wire format
 * (shared/ollama-wire.md) closely enough for ollama-js, with knobs for every fault the service
 * must survive. Run alone (`node test/support/fake-ollama.ts --port 11434 --delay 20`) it serves
 * benchmarks from its own process.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'

export interface Scenario {
  /** The reply's chunks; by default `You said: <last user message>` in four chunks. */
  tokens?: string[]
  /** Wait before each chunk. */
  tokenDelayMs?: number
  /** Wait before the response headers (real Ollama sends them with the first chunk). */
  headersDelayMs?: number
  /** Answer with this HTTP status and `{"error": errorMessage}` instead of a stream. */
  status?: number
  errorMessage?: string
  /** After this many chunks, send a `{"error"}` line and close. */
  failAfterTokens?: number
  /** After this many chunks, close without a done line. */
  cutAfterTokens?: number
  /** After this many chunks, send nothing more until the client goes away. */
  stallAfterTokens?: number
  /** After this many chunks, send a line that is not JSON. */
  malformedAfterTokens?: number
  doneReason?: 'stop' | 'length'
  /**
   * A thinking model's reasoning, sent first in chunks of `message.thinking` with empty content
   * (when thinking is on: `think` not false). By default `Thinking about: <last user message>`.
   */
  thinking?: string[]
  /** Tool calls Ollama makes in its last chunk before done (arguments as objects, as Ollama sends them). */
  toolCalls?: Array<{ name: string; arguments: Record<string, unknown> }>
  /**
   * Each line of the reply (the done line included; the first one brings the headers, as with a
   * real Ollama) waits for a permit from `release()`: a test decides when the reply moves on
   * instead of racing a timer.
   */
  paced?: boolean
}

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: any
  receivedAt: number
  /** When the client went away before the response ended (an abort), else null. */
  abortedAt: number | null
  finished: boolean
}

export interface FakeOllamaOptions {
  models?: string[]
  scenario?: Scenario
  port?: number
  /** Serve HTTPS with this key and certificate (PEM), as Ollama behind a TLS proxy would. */
  tls?: { key: string; cert: string }
  /** Chats generated at once (OLLAMA_NUM_PARALLEL); more wait in a queue, as with Ollama. Unlimited when absent. */
  parallel?: number
  /**
   * A KV cache, as one runner slot keeps it: a prompt's tokens after the common prefix with the
   * previous prompt are evaluated, at this many ms a token, before the first token is sent.
   */
  kvMsPerToken?: number
  /** What /api/show lists per model (as named in `models`); others have `completion` and `tools`. */
  capabilities?: Record<string, string[]>
}

export const DEFAULT_MODELS = ['llama3.2:latest', 'qwen3:8b']

export class FakeOllama {
  readonly requests: RecordedRequest[] = []
  models: string[]
  /** Wait before answering /api/tags (an Ollama too busy to list its models). */
  tagsDelayMs = 0
  /** Called with the last user message of each chat as it starts to generate. */
  onChat: ((lastUserMessage: string) => void) | undefined
  /** Models /api/ps lists as loaded in memory. */
  loaded: string[] = []
  /** Chats that got a slot and are generating now, and the most there ever were at once. */
  generating = 0
  peakGenerating = 0
  private readonly parallel: number
  private readonly slotWaiters: Array<() => void> = []
  scenario: Scenario
  private readonly queued: Scenario[] = []
  private permits = 0
  private readonly permitWaiters = new Set<() => void>()
  private readonly server: Server
  private readonly sockets = new Set<import('node:net').Socket>()
  url = ''

  private readonly scheme: 'http' | 'https'

  capabilities: Record<string, string[]>

  constructor({ models = DEFAULT_MODELS, scenario = {}, tls, parallel = Infinity, kvMsPerToken, capabilities = {} }: FakeOllamaOptions = {}) {
    this.models = models
    this.capabilities = capabilities
    this.kvMsPerToken = kvMsPerToken
    this.parallel = parallel
    this.scenario = scenario
    this.scheme = tls ? 'https' : 'http'
    const listener = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res)
    const options = { noDelay: true, keepAliveTimeout: 60_000 }
    this.server = tls ? createTlsServer({ ...options, ...tls }, listener) : createServer(options, listener)
    this.server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve))
    const host = this.scheme === 'https' ? 'localhost' : '127.0.0.1'
    this.url = `${this.scheme}://${host}:${(this.server.address() as AddressInfo).port}`
    return this
  }

  /** The host in the `host:port` form OLLAMA_HOST usually takes. */
  get hostPort(): string {
    return this.url.replace(/^https?:\/\//, '')
  }

  /** The scenario for the next chat request only (queued in order), over the standing one. */
  next(scenario: Scenario): this {
    this.queued.push(scenario)
    return this
  }

  /** Lets `lines` more lines of paced replies go out. */
  release(lines = 1): void {
    this.permits += lines
    for (const wake of this.permitWaiters) wake()
  }

  /** Resolves with true once a permit is taken, or false when the client has gone away first. */
  private async takePermit(res: ServerResponse): Promise<boolean> {
    while (this.permits === 0) {
      if (res.destroyed) return false
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.permitWaiters.delete(wake)
          res.off('close', wake)
          resolve()
        }
        this.permitWaiters.add(wake)
        res.once('close', wake)
      })
    }
    this.permits--
    return !res.destroyed
  }

  /** Runs a chat once one of the `parallel` slots is free, as Ollama queues requests past OLLAMA_NUM_PARALLEL. */
  private async withSlot(res: ServerResponse, chat: () => Promise<void>): Promise<void> {
    while (this.generating >= this.parallel) {
      await new Promise<void>((resolve) => this.slotWaiters.push(resolve))
      if (res.destroyed) return
    }
    this.generating++
    this.peakGenerating = Math.max(this.peakGenerating, this.generating)
    try {
      await chat()
      if (!res.writableEnded && !res.destroyed) await new Promise((resolve) => res.once('close', resolve))
    } finally {
      this.generating--
      this.slotWaiters.shift()?.()
    }
  }

  /** Messages dropped by its own truncation, per chat that needed it. */
  readonly truncated: number[] = []
  /** With kvMsPerToken: called with each chat's prompt tokens and those it had to evaluate. */
  onPromptEvaluated: ((promptTokens: number, evaluated: number) => void) | undefined
  private readonly kvMsPerToken: number | undefined
  private previousPrompt: Array<{ role: string; content: string }> = []

  chatRequests(): RecordedRequest[] {
    return this.requests.filter((request) => request.path === '/api/chat')
  }

  /** Resolves once `predicate` holds, checking every few milliseconds, or rejects after `timeoutMs`. */
  async waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('fake Ollama: condition not met in time')
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!
    const raw = await readBody(req)
    let body: any = null
    try {
      body = raw ? JSON.parse(raw) : null
    } catch {
      body = raw
    }
    const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body, receivedAt: Date.now(), abortedAt: null, finished: false }
    this.requests.push(record)
    res.once('close', () => {
      if (!res.writableFinished) record.abortedAt = Date.now()
    })
    res.once('finish', () => (record.finished = true))

    const route = `${req.method} ${path}`
    switch (route) {
      case 'GET /':
      case 'HEAD /':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
        res.end(req.method === 'HEAD' ? undefined : 'Ollama is running')
        return
      case 'GET /api/version':
        return sendJson(res, 200, { version: '0.32.15' })
      case 'GET /api/tags':
        if (this.tagsDelayMs) await sleep(this.tagsDelayMs)
        return sendJson(res, 200, { models: this.models.map(modelEntry) })
      case 'GET /api/ps':
        return sendJson(res, 200, { models: this.loaded.map((name) => ({ ...modelEntry(name), expires_at: '2030-01-01T00:00:00Z', size_vram: 2_019_393_189, context_length: 8192 })) })
      case 'POST /api/show': {
        // As Ollama: the name is normalised before the lookup, and a missing model is a 404.
        const name = ollamaName(String(body?.model ?? body?.name ?? ''))
        const model = this.models.find((candidate) => ollamaName(candidate) === name)
        if (!model) return sendJson(res, 404, { error: `model '${name}' not found` })
        const { details } = modelEntry(model)
        return sendJson(res, 200, { license: '', modelfile: '', parameters: '', template: '{{ .Prompt }}', details, model_info: {}, capabilities: this.capabilitiesOf(model), modified_at: '2025-05-04T17:37:44.706015396-07:00' })
      }
      case 'POST /api/chat':
        return this.withSlot(res, () => this.chat(body, res))
      case 'POST /api/embed':
        return this.embed(body, res)
      default:
        res.writeHead(404, { 'content-type': 'text/plain' })
        res.end('404 page not found')
    }
  }

  /** Embeddings of `input` (a string or strings), as /api/embed: one vector each, in order, L2-normalised. */
  private async embed(body: any, res: ServerResponse): Promise<void> {
    const scenario = { ...this.scenario, ...this.embedQueue.shift() }
    this.onEmbed?.()
    if (scenario.headersDelayMs) {
      await sleep(scenario.headersDelayMs)
      if (res.destroyed) return
    }
    if (scenario.status) return sendJson(res, scenario.status, { error: scenario.errorMessage ?? 'server busy, please try again.  maximum pending requests exceeded' })
    const model = String(body?.model ?? '')
    const listed = this.models.find((candidate) => ollamaName(candidate) === ollamaName(model))
    if (!listed) return sendJson(res, 404, { error: `model '${model}' not found` })
    if (!this.capabilitiesOf(listed).includes('embedding')) return sendJson(res, 400, { error: `"${model}" does not support embeddings` })
    const inputs: unknown[] = Array.isArray(body.input) ? body.input : [body.input ?? '']
    if (inputs.some((input) => typeof input !== 'string')) return sendJson(res, 400, { error: 'invalid input type' })
    const dimensions = Number(body.dimensions ?? EMBED_DIMENSIONS)
    this.embedded += inputs.length
    const tokens = inputs.reduce((sum: number, input) => sum + wordsOf(input as string).length, 0)
    sendJson(res, 200, { model, embeddings: inputs.map((input) => embeddingOf(input as string, dimensions)), total_duration: 1_000_000, load_duration: 0, prompt_eval_count: tokens })
  }

  /** What /api/show lists for `model`: as configured, else `embedding` for a name with "embed" in it, else completion and tools. */
  capabilitiesOf(model: string): string[] {
    return this.capabilities[model] ?? (/embed/.test(model) ? ['embedding'] : ['completion', 'tools'])
  }

  /** Called as each /api/embed request arrives. */
  onEmbed: (() => void) | undefined
  /** Texts embedded so far (each input of each /api/embed call). */
  embedded = 0
  /** Scenarios for the next /api/embed calls, one each (a status, a delay), over the standing one. */
  readonly embedQueue: Scenario[] = []

  private async chat(body: any, res: ServerResponse): Promise<void> {
    const queued = this.queued.shift()
    const scenario = { ...this.scenario, ...queued }
    if (!body || typeof body !== 'object') return sendJson(res, 400, { error: 'missing request body' })
    if (!body.model) return sendJson(res, 400, { error: 'model is required' })
    const model = String(body.model)
    const name = ollamaName(model)
    if (scenario.headersDelayMs) {
      await sleep(scenario.headersDelayMs)
      if (res.destroyed) return
    }
    if (scenario.status) return sendJson(res, scenario.status, { error: scenario.errorMessage ?? 'server busy, please try again.  maximum pending requests exceeded' })
    if (!this.models.map(ollamaName).includes(name)) return sendJson(res, 404, { error: `model '${model}' not found` })

    let messages: Array<{ role: string; content: string; images?: unknown[] }> = Array.isArray(body.messages) ? body.messages : []
    // As Ollama: images are plain base64 (a data: URL fails to decode).
    for (const message of messages) {
      for (const image of message.images ?? []) {
        if (typeof image !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(image)) return sendJson(res, 400, { error: 'illegal base64 data at input byte 4' })
      }
    }
    // As Ollama: a prompt over num_ctx is an error with truncate false, else its oldest messages
    // (not the system ones, never the last) are dropped until it fits, silently.
    const numCtx = Number(body.options?.num_ctx ?? DEFAULT_NUM_CTX)
    if (promptTokensOf(messages) > numCtx) {
      if (body.truncate === false) return sendJson(res, 400, { error: 'the input length exceeds the context length' })
      const kept = [...messages]
      for (let index = 0; promptTokensOf(kept) > numCtx && index < kept.length - 1; ) {
        if (kept[index]!.role === 'system') index++
        else kept.splice(index, 1)
      }
      this.truncated.push(messages.length - kept.length)
      messages = kept
    }
    // As Ollama: tools for a model without the capability are refused.
    const tools: Array<{ function?: { name?: string } }> = Array.isArray(body.tools) ? body.tools : []
    if (tools.length && !this.capabilitiesOf(model).includes('tools')) return sendJson(res, 400, { error: `"${model}" does not support tools` })
    // As Ollama: `think` takes a boolean or a level; a model that cannot think refuses anything but
    // false, and a model that can thinks unless told not to (shared/ollama-wire.md, 1.1).
    const capabilities = this.capabilitiesOf(model)
    if (body.think !== undefined && typeof body.think !== 'boolean' && !THINK_LEVELS.includes(body.think)) return sendJson(res, 400, { error: `invalid think value: ${JSON.stringify(body.think)}` })
    const thinks = capabilities.includes('thinking') && body.think !== false
    if (body.think !== undefined && body.think !== false && !thinks) return sendJson(res, 400, { error: `"${model}" does not support thinking` })
    // As Ollama: `format` is "json" or a JSON Schema object, else the generation fails before any byte.
    const format = body.format
    if (format !== undefined && format !== null && format !== '' && format !== 'json' && (typeof format !== 'object' || Array.isArray(format))) {
      return sendJson(res, 500, { error: `invalid format: ${JSON.stringify(format)}; expected "json" or a valid JSON Schema object` })
    }
    const lastUser = [...messages].reverse().find((message) => message.role === 'user')?.content ?? ''
    this.onChat?.(lastUser)
    // On cue (README of the tests: a model that calls tools): with tools offered, a user message
    // holding `[[call NAME {json}]]` is answered with those calls, and tool results with what they said.
    const last = messages.at(-1)
    let toolCalls = scenario.toolCalls
    let cued: string[] | undefined
    // A reply queued for this chat (next()) wins over a cue; a standing one does not.
    if (tools.length && !scenario.toolCalls && !queued?.tokens) {
      if (last?.role === 'user') {
        const calls = [...last.content.matchAll(/\[\[call (\S+) (\{.*?\})\]\]/g)].map(([, name, args]) => ({ name: name!, arguments: JSON.parse(args!) as Record<string, unknown> }))
        if (calls.length) [toolCalls, cued] = [calls, ['Let me ', 'check.']]
      } else if (last?.role === 'tool') {
        const results = messages.slice(messages.findLastIndex((message) => message.role !== 'tool') + 1)
        cued = ['The tools said: ', results.map((message) => message.content).join(' | ')]
      }
    }
    // A reply in a format is JSON that follows it (made up from the schema), unless the scenario says otherwise.
    const formatted = format === 'json' || (format && typeof format === 'object') ? splitIn4(JSON.stringify(format === 'json' ? { answer: lastUser } : valueOf(format, lastUser))) : undefined
    let tokens = (queued?.tokens ? undefined : cued) ?? scenario.tokens ?? formatted ?? ['You', ' said', ': ', lastUser]
    const thinking = thinks ? (scenario.thinking ?? ['Thinking ', 'about: ', lastUser]) : []
    // num_predict bounds the reply (4 characters a token here), which then ends with done_reason length.
    const numPredict = Number(body.options?.num_predict ?? -1)
    let cutShort = false
    if (numPredict >= 0 && tokens.join('').length > numPredict * 4) {
      let room = numPredict * 4
      tokens = tokens.map((token) => {
        const kept = token.slice(0, Math.max(0, room))
        room -= kept.length
        return kept
      }).filter(Boolean)
      cutShort = true
    }
    const promptTokens = promptTokensOf(messages)
    if (this.kvMsPerToken !== undefined) {
      const evaluated = promptTokens - cachedPrefixTokens(this.previousPrompt, messages)
      this.previousPrompt = messages
      this.onPromptEvaluated?.(promptTokens, evaluated)
      await sleep(evaluated * this.kvMsPerToken)
    }
    const startedAt = process.hrtime.bigint()
    const chunk = (content: string, done: boolean, thought?: string) => ({
      model,
      created_at: new Date().toISOString(),
      message: { role: 'assistant', content, ...(thought === undefined ? {} : { thinking: thought }) },
      done,
      ...(done
        ? {
            done_reason: scenario.doneReason ?? (cutShort ? 'length' : 'stop'),
            total_duration: Number(process.hrtime.bigint() - startedAt),
            load_duration: 1_334_875,
            prompt_eval_count: promptTokens,
            prompt_eval_duration: 342_546_000,
            eval_count: thinking.length + tokens.length,
            eval_duration: 4_535_599_000,
          }
        : {}),
    })

    if (body.stream === false) {
      for (const _ of tokens) if (scenario.tokenDelayMs) await sleep(scenario.tokenDelayMs)
      if (res.destroyed) return
      return sendJson(res, 200, chunk(tokens.join(''), true, thinking.length ? thinking.join('') : undefined))
    }

    const delay = scenario.tokenDelayMs ?? 0
    let headersSent = false
    const write = (line: string) => {
      if (!headersSent) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        headersSent = true
      }
      return res.write(line)
    }
    const paced = scenario.paced === true
    // Thinking chunks come first, with empty content; the scenario's chunk counts run over both.
    const lines = [...thinking.map((piece) => chunk('', false, piece)), ...tokens.map((piece) => chunk(piece, false))]
    for (let index = 0; index < lines.length; index++) {
      if (delay) await sleep(delay)
      if (paced && !(await this.takePermit(res))) return
      if (res.destroyed) return
      if (index === scenario.failAfterTokens) {
        write(`${JSON.stringify({ error: scenario.errorMessage ?? 'an error was encountered while running the model' })}\n`)
        return void res.end()
      }
      if (index === scenario.cutAfterTokens) return void res.end()
      if (index === scenario.stallAfterTokens) return
      if (index === scenario.malformedAfterTokens) write('{"model": this is not json\n')
      if (!write(`${JSON.stringify(lines[index])}\n`)) await new Promise((resolve) => res.once('drain', resolve))
    }
    if (scenario.stallAfterTokens === lines.length) return
    if (scenario.cutAfterTokens === lines.length) return void res.end()
    if (toolCalls?.length) {
      const calls = toolCalls.map((call, index) => ({ id: `call_${index}abcdefg`.slice(0, 13), function: { index, name: call.name, arguments: call.arguments } }))
      write(`${JSON.stringify({ ...chunk('', false), message: { role: 'assistant', content: '', tool_calls: calls } })}\n`)
    }
    if (paced && !(await this.takePermit(res))) return
    write(`${JSON.stringify(chunk('', true))}\n`)
    res.end()
  }
}

const THINK_LEVELS = ['low', 'medium', 'high', 'max']

/** A value that follows `schema` (the keywords a model's format uses), made up from `seed`. */
function valueOf(schema: any, seed: string, depth = 0): unknown {
  if (depth > 16 || !schema || typeof schema !== 'object') return null
  if (Array.isArray(schema.enum) && schema.enum.length) return schema.enum[0]
  if ('const' in schema) return schema.const
  const option = schema.anyOf?.[0] ?? schema.oneOf?.[0]
  if (option) return valueOf(option, seed, depth + 1)
  const type = Array.isArray(schema.type) ? schema.type.find((kind: string) => kind !== 'null') : schema.type
  switch (type) {
    case 'string': return seed
    case 'integer': return Math.max(1, Number(schema.minimum ?? 1))
    case 'number': return Math.max(1.5, Number(schema.minimum ?? 1.5))
    case 'boolean': return true
    case 'null': return null
    case 'array': return [valueOf(schema.items ?? {}, seed, depth + 1)].slice(0, schema.maxItems ?? 1)
    default: return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([key, property]) => [key, valueOf(property, seed, depth + 1)]))
  }
}

/** A text in four chunks, as a model streams it. */
/** nomic-embed-text's size, the default EMBED_MODEL's. */
export const EMBED_DIMENSIONS = 768

function wordsOf(text: string): string[] {
  return text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').match(/[\p{L}\p{N}]+/gu) ?? []
}

/**
 * A deterministic embedding in which texts that share words are near: each word and each pair of
 * neighbouring words adds ±1 at a position hashed from it (FNV-1a), then the vector is L2-normalised.
 */
export function embeddingOf(text: string, dimensions = EMBED_DIMENSIONS): number[] {
  const vector = new Array<number>(dimensions).fill(0)
  const words = wordsOf(text)
  const features = [...words, ...words.slice(1).map((word, index) => `${words[index]} ${word}`)]
  for (const feature of features) {
    let hash = 0x811c9dc5
    for (let index = 0; index < feature.length; index++) hash = Math.imul(hash ^ feature.charCodeAt(index), 0x01000193) >>> 0
    vector[hash % dimensions]! += hash & 0x80000000 ? -1 : 1
  }
  const norm = Math.hypot(...vector) || 1
  return vector.map((value) => value / norm)
}

function splitIn4(text: string): string[] {
  const size = Math.ceil(text.length / 4) || 1
  return Array.from({ length: Math.ceil(text.length / size) }, (_, index) => text.slice(index * size, (index + 1) * size))
}

/** The context a request gets without num_ctx (Ollama's, under 24 GiB of VRAM). */
const DEFAULT_NUM_CTX = 4096
/** Tokens its chat template adds per message (a Llama 3 template adds about this many). */
export const FAKE_TOKENS_PER_MESSAGE = 4

/** What an image counts in a prompt, as Ollama counts it. */
export const FAKE_TOKENS_PER_IMAGE = 768

/** How this fake counts a prompt, as Ollama reports it in prompt_eval_count: 4 characters a token, plus the template, plus each image. */
export function promptTokensOf(messages: Array<{ content: unknown; images?: unknown[] }>): number {
  return messages.reduce((sum, message) => sum + Math.ceil(String(message.content ?? '').length / 4) + FAKE_TOKENS_PER_MESSAGE + (message.images?.length ?? 0) * FAKE_TOKENS_PER_IMAGE, 0)
}

/** The tokens of `next` that a cache holding `previous` already has: whole equal messages, then the equal start of the first that differs. */
function cachedPrefixTokens(previous: Array<{ role: string; content: string }>, next: Array<{ role: string; content: string }>): number {
  let tokens = 0
  for (let index = 0; index < Math.min(previous.length, next.length); index++) {
    const [before, now] = [previous[index]!, next[index]!]
    if (before.role === now.role && before.content === now.content) {
      tokens += promptTokensOf([now])
      continue
    }
    if (before.role !== now.role) break
    let same = 0
    while (same < before.content.length && before.content[same] === now.content[same]) same++
    return tokens + Math.floor(same / 4)
  }
  return tokens
}

/** Ollama fills in the default registry, namespace and tag, and compares names ignoring case. */
function ollamaName(model: string): string {
  const name = model.toLowerCase().replace(/^registry\.ollama\.ai\//, '').replace(/^library\//, '')
  return name.slice(name.lastIndexOf('/') + 1).includes(':') ? name : `${name}:latest`
}

function modelEntry(name: string) {
  return {
    name,
    model: name,
    modified_at: '2025-05-04T17:37:44.706015396-07:00',
    size: 2_019_393_189,
    digest: 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72',
    details: { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' },
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function startFakeOllama(options: FakeOllamaOptions = {}): Promise<FakeOllama> {
  return new FakeOllama(options).listen(options.port)
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      delay: { type: 'string', default: '0' },
      tokens: { type: 'string', default: '30' },
      parallel: { type: 'string' },
      // Prints {"chat": "<last user message>"} for each chat it starts to generate, for the bench to attribute turns to hosts.
      'log-chats': { type: 'boolean', default: false },
      // A KV cache (FakeOllamaOptions.kvMsPerToken); prints {"prompt": n, "evaluated": n} for each chat.
      'kv-ms-per-token': { type: 'string' },
      // A model with the vision capability, listed besides the default ones.
      vision: { type: 'string' },
    },
  })
  const tokens = Array.from({ length: Number(values.tokens) }, (_, index) => `tok${index} `)
  const fake = await startFakeOllama({
    port: Number(values.port),
    scenario: { tokenDelayMs: Number(values.delay), tokens },
    ...(values.parallel ? { parallel: Number(values.parallel) } : {}),
    ...(values['kv-ms-per-token'] ? { kvMsPerToken: Number(values['kv-ms-per-token']) } : {}),
    ...(values.vision ? { models: [...DEFAULT_MODELS, values.vision], capabilities: { [values.vision]: ['completion', 'vision'] } } : {}),
  })
  if (values['kv-ms-per-token']) fake.onPromptEvaluated = (prompt, evaluated) => process.stdout.write(`${JSON.stringify({ prompt, evaluated })}\n`)
  if (values['log-chats']) fake.onChat = (lastUserMessage) => process.stdout.write(`${JSON.stringify({ chat: lastUserMessage })}\n`)
  // The parent process reads the address from this line.
  process.stdout.write(`${JSON.stringify({ url: fake.url })}\n`)
  process.once('SIGTERM', () => void fake.close().then(() => process.exit(0)))
}
