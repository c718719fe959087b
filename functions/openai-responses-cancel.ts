import { defineFunction } from '../lib/handler.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { responseObject } from '../lib/openai/response-run.ts'
import { ownedResponse, runningElsewhere } from '../lib/openai/responses.ts'
import { NO_FRAMES, untilEnded } from '../lib/generation/elsewhere.ts'

/**
 * POST /v1/responses/{id}/cancel: stops a response in progress (queued ones too). Ollama's request
 * is aborted at once; the answer is the response once it is stored `cancelled`.
 */
export default defineFunction({
  name: 'openai-responses-cancel',
  method: 'POST',
  path: '/v1/responses/:id/cancel',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const stored = await ownedResponse(app, principal, params.id!)
    const running = app.responses.registry.get(stored.id)
    if (!running) {
      // Running on another instance: its owner stops it; the answer waits for its stored end.
      const elsewhere = runningElsewhere(app, principal, stored, NO_FRAMES)
      if (elsewhere && await app.database.cluster!.requestCancel({ kind: 'response', id: stored.id })) {
        await untilEnded(elsewhere)
        return Response.json(responseObject(await ownedResponse(app, principal, stored.id)))
      }
      throw new HttpProblem(400, 'validation', `The response ${stored.id} is ${stored.status}; only a response in progress can be cancelled.`)
    }
    if (running.run) running.run.stop('cancelled')
    else running.reservation.abortSetup('cancelled')
    await running.settled
    return Response.json(responseObject(running.run?.record ?? await ownedResponse(app, principal, stored.id)))
  },
})
