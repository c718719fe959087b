import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { responseEvents, responseObject } from '../lib/openai/response-run.ts'
import { acceptResponse, CreateResponseBody, followResponse } from '../lib/openai/responses.ts'
import { followEvents } from '../lib/shared/sse.ts'
import { parseInput } from '../lib/http/validate.ts'

/**
 * POST /v1/responses: OpenAI's Responses API, stateful. Stored in SQLite (unless `store: false`),
 * chained with `previous_response_id` or appended to a `conversation`; `background: true`
 * answers at once and runs as the server's generations do; `stream: true` sends OpenAI's events.
 */
export default defineFunction({
  name: 'openai-responses-create',
  method: 'POST',
  path: '/v1/responses',
  errors: 'openai',
  async handle(request, { app, principal }) {
    const acceptedAt = performance.now()
    const body = parseInput(CreateResponseBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const { record, started } = await acceptResponse(app, principal, body, acceptedAt)
    if (body.background) {
      // Runs on whoever follows it; its start failing is stored on the response, for polling to see.
      started.catch(() => {})
      // With stream too, the events flow from creation, as OpenAI sends them; the client may leave and resume.
      return body.stream ? followResponse(app, principal, record.id, -1) : Response.json(responseObject(record))
    }
    const run = await started
    if (body.stream) return followEvents(responseEvents(run, -1), null, app.config.sseHeartbeatMs)
    return Response.json(responseObject(await run.outcome))
  },
})
