import { defineFunction } from '../lib/handler.ts'
import { readImageBody } from '../lib/images/image-body.ts'
import { imageBodyBytes } from '../lib/images/image-input.ts'
import { responseEvents, responseObject } from '../lib/openai/response-run.ts'
import { acceptResponse, CreateResponseBody, followResponse, replayResponse } from '../lib/openai/responses.ts'
import { unsupported } from '../lib/openai/wire.ts'
import { claimIdempotencyKey, fingerprintOf, idempotencyKeyOf } from '../lib/retries/idempotency.ts'
import { followEvents } from '../lib/shared/sse.ts'
import { parseInput } from '../lib/http/validate.ts'

/**
 * POST /v1/responses: OpenAI's Responses API, stateful. Stored in SQLite (unless `store: false`),
 * chained with `previous_response_id` or appended to a `conversation`; `background: true`
 * answers at once and runs as the server's generations do; `stream: true` sends OpenAI's events.
 * Once per Idempotency-Key.
 */
export default defineFunction({
  name: 'openai-responses-create',
  method: 'POST',
  path: '/v1/responses',
  errors: 'openai',
  maxBodyBytes: imageBodyBytes,
  async handle(request, { app, principal }) {
    const acceptedAt = performance.now()
    const body = parseInput(CreateResponseBody, await readImageBody(request, imageBodyBytes(app.config)), 'request body')
    // With an Idempotency-Key, a retry of the same request gets the response the first one made.
    const key = idempotencyKeyOf(request)
    if (key !== undefined) {
      if (body.store === false) throw unsupported('store', 'An Idempotency-Key needs store: true: a response that is not stored cannot be answered again.')
      const earlier = await claimIdempotencyKey(app, principal.userId, key, fingerprintOf('POST /v1/responses', body))
      if (earlier) return replayResponse(app, principal, (JSON.parse(earlier.answer!) as { response_id: string }).response_id, body)
    }
    let remembered = false
    const remember = async (responseId: string) => {
      remembered = true
      if (key !== undefined) await app.store.recordIdempotentOutcome(principal.userId, key, { status: 200, answer: JSON.stringify({ response_id: responseId }) })
    }
    try {
      const { record, started } = await acceptResponse(app, principal, body, acceptedAt)
      if (body.background) {
        // Stored from here on, a failed start included: a retry gets this response.
        await remember(record.id)
        // Runs on whoever follows it; its start failing is stored on the response, for polling to see.
        started.catch(() => {})
        // With stream too, the events flow from creation, as OpenAI sends them; the client may leave and resume.
        return body.stream ? followResponse(app, principal, record.id, -1) : Response.json(responseObject(record))
      }
      // A response Ollama refused is not kept (nor is the key): its retry runs again.
      const run = await started
      await remember(record.id)
      if (body.stream) return followEvents(responseEvents(run, -1), null, app.config.sseHeartbeatMs)
      return Response.json(responseObject(await run.outcome))
    } catch (error) {
      if (key !== undefined && !remembered) await app.store.releaseIdempotencyKey(principal.userId, key)
      throw error
    }
  },
})
