import * as v from 'valibot'
import { readJsonBody } from '../lib/http/body.ts'
import { defineFunction } from '../lib/handler.ts'
import { jsonObject, parseInput, sessionIdFrom, strictMessage } from '../lib/http/validate.ts'
import { HttpProblem, noSuchSession } from '../lib/shared/problem.ts'

const Body = jsonObject(v.strictObject({
  rating: v.nullable(v.picklist(['up', 'down'], 'must be up, down or null')),
}, strictMessage('is not a known field', 'the body must be a JSON object')), 'the body must be a JSON object')

/**
 * PATCH /v1/sessions/{id}/messages/{message_id}: rates a reply, thumbs `up` or `down` (`null`
 * takes the rating back). Listed with the message as `rating`, counted in the metrics.
 */
export default defineFunction({
  name: 'message-update',
  method: 'PATCH',
  path: '/v1/sessions/:id/messages/:message_id',
  async handle(request, { app, params, principal }) {
    const sessionId = sessionIdFrom(params)
    const { rating } = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    // Someone else's session is as missing as an absent one, whatever message id comes with it.
    if (!(await app.store.getSession(sessionId, principal.userId))) throw noSuchSession(sessionId)
    const change = await app.store.rateReply(sessionId, params.message_id!, rating)
    if (change === 'missing') throw new HttpProblem(404, 'not_found', `No message has the id ${params.message_id} in session ${sessionId}.`)
    if (change === 'not_a_reply') throw new HttpProblem(400, 'validation', 'Only a reply (an assistant message) can be rated.', { errors: [{ path: 'rating', message: 'only a reply can be rated' }] })
    if (rating && change.previous !== rating) app.metrics.rated(rating)
    const message = await app.store.getSessionMessage(sessionId, params.message_id!)
    const { seq: _seq, ...shown } = message!
    return Response.json(shown)
  },
})
