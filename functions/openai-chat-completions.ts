import type { ChatResponse } from 'ollama'
import * as v from 'valibot'
import { limitedUserOf } from '../lib/access/control.ts'
import { defineFunction } from '../lib/handler.ts'
import { readImageBody } from '../lib/images/image-body.ts'
import { imageBodyBytes, imagesForModel } from '../lib/images/image-input.ts'
import { isModelAllowed } from '../lib/shared/models.ts'
import { forcedToolOf } from '../lib/openai/forced-tool.ts'
import {
  ChatCompletionMessage,
  finishReason,
  FunctionTool,
  newId,
  openAIErrorBody,
  openAIToolCalls,
  ReasoningEffort,
  ResponseFormat,
  thinkOfEffort,
  toOllamaFormat,
  toOllamaMessages,
  toOllamaTools,
  unixSeconds,
  unsupported,
} from '../lib/openai/wire.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { parseInput } from '../lib/http/validate.ts'

const number = (min: number, max: number) => v.optional(v.nullable(v.pipe(v.number(), v.minValue(min), v.maxValue(max))))
const whole = (min: number, max: number) => v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max))))

/** OpenAI's request, the fields this server reads; any other field is ignored, as OpenAI's clients expect. */
const Body = v.looseObject({
  model: v.pipe(v.string(), v.trim(), v.nonEmpty()),
  messages: v.pipe(v.array(ChatCompletionMessage), v.minLength(1, 'must have at least one message')),
  stream: v.optional(v.nullable(v.boolean())),
  stream_options: v.optional(v.nullable(v.looseObject({ include_usage: v.optional(v.boolean()) }))),
  max_completion_tokens: whole(1, 1_000_000),
  max_tokens: whole(1, 1_000_000),
  temperature: number(0, 2),
  top_p: number(0, 1),
  seed: whole(-2_147_483_648, 2_147_483_647),
  stop: v.optional(v.nullable(v.union([v.string(), v.pipe(v.array(v.string()), v.maxLength(16))]))),
  presence_penalty: number(-2, 2),
  frequency_penalty: number(-2, 2),
  response_format: v.optional(ResponseFormat),
  reasoning_effort: ReasoningEffort,
  reasoning: v.optional(v.nullable(v.looseObject({ effort: ReasoningEffort }))),
  tools: v.optional(v.pipe(v.array(FunctionTool), v.maxLength(128, 'must have at most 128 tools'))),
  tool_choice: v.optional(v.unknown()),
  n: whole(1, 128),
  logit_bias: v.optional(v.nullable(v.record(v.string(), v.number()))),
  logprobs: v.optional(v.nullable(v.boolean())),
  audio: v.optional(v.unknown()),
  modalities: v.optional(v.nullable(v.array(v.string()))),
})
type Body = v.InferOutput<typeof Body>

/** What changes the meaning of a request and cannot be honoured is refused, naming the param; never ignored. */
function refuseUnsupported(body: Body): void {
  if ((body.n ?? 1) > 1) throw unsupported('n', 'Only one choice (n: 1) is supported.')
  if (body.logit_bias && Object.keys(body.logit_bias).length > 0) throw unsupported('logit_bias', 'logit_bias is not supported by Ollama.')
  if (body.logprobs) throw unsupported('logprobs', 'logprobs are not supported here.')
  if (body.audio != null || body.modalities?.includes('audio')) throw unsupported(body.audio != null ? 'audio' : 'modalities', 'Audio output is not supported.')
}

const encoder = new TextEncoder()
const sseData = (data: unknown) => encoder.encode(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)

/**
 * POST /v1/chat/completions: OpenAI's Chat Completions, stateless (nothing is stored), over the
 * Ollama host pool. Streamed as OpenAI's chunks and `data: [DONE]`, or answered whole. A client
 * that leaves aborts Ollama's request. Counted in MAX_CONCURRENT_CHATS like /v1/chat.
 */
export default defineFunction({
  name: 'openai-chat-completions',
  method: 'POST',
  path: '/v1/chat/completions',
  errors: 'openai',
  maxBodyBytes: imageBodyBytes,
  async handle(request, { app, principal }) {
    const body = parseInput(Body, await readImageBody(request, imageBodyBytes(app.config)), 'request body')
    refuseUnsupported(body)
    if (body.messages.length > app.config.maxInputItems) {
      throw unsupported('messages', `messages has ${body.messages.length} items; at most ${app.config.maxInputItems} are taken (MAX_INPUT_ITEMS).`)
    }
    if (!isModelAllowed(body.model, app.config.allowedModels)) {
      throw new HttpProblem(404, 'model_not_found', `The model '${body.model}' does not exist or you do not have access to it.`, { param: 'model' })
    }
    const given = toOllamaMessages(body.messages)
    const images = await imagesForModel(app, body.model, given.map((message, index) => ({ path: `messages[${index}].content`, sources: message.imageSources ?? [] })))
    const messages = given.map(({ imageSources: _, ...message }, index) => (images[index]!.length ? { ...message, images: images[index]!.map((image) => image.data) } : message))
    const format = toOllamaFormat(body.response_format)
    const maxTokens = body.max_completion_tokens ?? body.max_tokens
    const options = {
      num_ctx: app.config.defaultNumCtx,
      ...(maxTokens != null ? { num_predict: maxTokens } : {}),
      ...(body.temperature != null ? { temperature: body.temperature } : {}),
      ...(body.top_p != null ? { top_p: body.top_p } : {}),
      ...(body.seed != null ? { seed: body.seed } : {}),
      ...(body.stop != null ? { stop: typeof body.stop === 'string' ? [body.stop] : body.stop } : {}),
      ...(body.presence_penalty != null ? { presence_penalty: body.presence_penalty } : {}),
      ...(body.frequency_penalty != null ? { frequency_penalty: body.frequency_penalty } : {}),
    }
    const offered = body.tools?.length && body.tool_choice !== 'none' ? toOllamaTools(body.tools) : undefined
    // "required" or a named function: asked for as JSON in the call's shape (lib/openai/forced-tool.ts).
    const forced = forcedToolOf(body.tool_choice, offered ?? [])
    if (forced && format) throw unsupported('response_format', 'response_format cannot be used with a tool_choice that forces a call: the call sets the answer\'s format.')
    const tools = forced ? undefined : offered
    const think = thinkOfEffort(body.reasoning_effort ?? body.reasoning?.effort)

    const acceptedAt = performance.now()
    // A slot like any chat's: MAX_CONCURRENT_CHATS counts it, and shutdown waits for it.
    const reservation = await app.generations.reserve(newId('chatcmpl-slot'), limitedUserOf(principal))
    const signal = AbortSignal.any([request.signal, reservation.signal])
    let lease
    try {
      if ((await app.ollama.hasModel(body.model)) === false) {
        throw new HttpProblem(404, 'model_not_found', `The model '${body.model}' does not exist or you do not have access to it.`, { param: 'model' })
      }
      if (think !== undefined && think !== false) await app.ollama.requireCapability(body.model, 'thinking', 'reason (send reasoning_effort "none", or pick a model that can)')
      lease = await app.ollama.startChat({
        model: body.model,
        messages: forced ? [...messages, forced.instruction] : messages,
        options,
        ...(forced ? { format: forced.format } : format ? { format } : {}),
        ...(tools ? { tools } : {}),
        ...(think === undefined ? {} : { think }),
      }, signal)
    } catch (error) {
      reservation.release()
      throw error
    }
    const id = newId('chatcmpl').replace('chatcmpl_', 'chatcmpl-')
    const created = unixSeconds()
    let firstToken = true
    const finished = (status: 'complete' | 'error' | 'cancelled', last: ChatResponse | undefined) => {
      lease.release()
      reservation.release()
      app.metrics.reply(status, last?.prompt_eval_count ?? null, last?.eval_count ?? null)
    }
    const noteToken = () => {
      if (firstToken) app.metrics.firstToken((performance.now() - acceptedAt) / 1000)
      firstToken = false
    }
    const usageOf = (last: ChatResponse | undefined) => {
      const prompt = last?.prompt_eval_count ?? 0
      const completion = last?.eval_count ?? 0
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
    }

    // The reasoning goes under both names clients read: Ollama's OpenAI layer's (`reasoning`, read by
    // the AI SDK) and DeepSeek's (`reasoning_content`, read by LangChain and the AI SDK).
    const reasoningFields = (thinking: string) => ({ reasoning: thinking, reasoning_content: thinking })
    // A forced call's JSON answer as the call; cut short by max_tokens it stays text (finish_reason length).
    const forcedAnswer = (json: string, last: ChatResponse | undefined) => {
      const call = forced!.callOf(json)
      if (call) return { content: null, toolCalls: openAIToolCalls({ message: { role: 'assistant', content: '', tool_calls: [{ function: call }] } } as ChatResponse) }
      if (last?.done_reason === 'length') return { content: json, toolCalls: [] }
      throw new HttpProblem(502, 'ollama', 'The model did not answer with a call of the function tool_choice asks for.')
    }
    if (!body.stream) {
      let content = ''
      let thinking = ''
      const toolCalls: ReturnType<typeof openAIToolCalls> = []
      let last: ChatResponse | undefined
      try {
        for await (const chunk of lease.stream) {
          if (chunk.message?.thinking) {
            noteToken()
            thinking += chunk.message.thinking
          }
          if (chunk.message?.content) {
            noteToken()
            content += chunk.message.content
          }
          toolCalls.push(...openAIToolCalls(chunk))
          last = chunk
        }
        if (forced) {
          const answer = forcedAnswer(content, last)
          content = answer.content ?? ''
          toolCalls.push(...answer.toolCalls)
        }
      } catch (error) {
        finished(signal.aborted ? 'cancelled' : 'error', last)
        throw signal.aborted || error instanceof HttpProblem ? error : new HttpProblem(502, 'ollama', `Ollama failed during the reply: ${(error as Error).message}`)
      }
      finished('complete', last)
      return Response.json({
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        system_fingerprint: 'fp_chat_ollama',
        choices: [{
          index: 0,
          message: { role: 'assistant', content: toolCalls.length && !content ? null : content, refusal: null, ...(thinking ? reasoningFields(thinking) : {}), ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
          logprobs: null,
          finish_reason: finishReason(last?.done_reason, toolCalls.length > 0),
        }],
        usage: usageOf(last),
      })
    }

    const chunk = (delta: Record<string, unknown>, reason: string | null = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: body.model,
      system_fingerprint: 'fp_chat_ollama',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: reason }],
    })
    const stream = lease.stream
    let cancelled = false
    const events = new ReadableStream<Uint8Array>({
      async start(controller) {
        // A forced call has no text (OpenAI's first delta says null then).
        controller.enqueue(sseData(chunk({ role: 'assistant', content: forced ? null : '' })))
        let last: ChatResponse | undefined
        let toolIndex = 0
        // A forced call's JSON is held back, and goes out as the call at the end.
        let forcedJson = ''
        try {
          for await (const part of stream) {
            // A chunk with both goes out as two, the reasoning first (as Ollama's OpenAI layer does).
            if (part.message?.thinking) {
              noteToken()
              controller.enqueue(sseData(chunk(reasoningFields(part.message.thinking))))
            }
            if (part.message?.content) {
              noteToken()
              if (forced) forcedJson += part.message.content
              else controller.enqueue(sseData(chunk({ content: part.message.content })))
            }
            const calls = openAIToolCalls(part)
            if (calls.length) {
              noteToken()
              controller.enqueue(sseData(chunk({ tool_calls: calls.map((call) => ({ index: toolIndex++, ...call })) })))
            }
            last = part
          }
          if (forced) {
            const answer = forcedAnswer(forcedJson, last)
            if (answer.content) controller.enqueue(sseData(chunk({ content: answer.content })))
            if (answer.toolCalls.length) controller.enqueue(sseData(chunk({ tool_calls: answer.toolCalls.map((call) => ({ index: toolIndex++, ...call })) })))
          }
        } catch (error) {
          finished(cancelled || signal.aborted ? 'cancelled' : 'error', last)
          if (!cancelled && !signal.aborted) {
            controller.enqueue(sseData(openAIErrorBody(error instanceof HttpProblem ? error : new HttpProblem(502, 'ollama', `Ollama failed during the reply: ${(error as Error).message}`))))
            controller.close()
          }
          return
        }
        finished('complete', last)
        controller.enqueue(sseData(chunk({}, finishReason(last?.done_reason, toolIndex > 0))))
        if (body.stream_options?.include_usage) controller.enqueue(sseData({ ...chunk({}), choices: [], usage: usageOf(last) }))
        controller.enqueue(sseData('[DONE]'))
        controller.close()
      },
      cancel() {
        // The client left: Ollama stops generating when its request is aborted.
        cancelled = true
        stream.abort()
      },
    })
    return new Response(events, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } })
  },
})
