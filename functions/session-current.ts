import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { jsonObject, parseInput, sessionIdFrom, strictMessage, uuid } from '../lib/http/validate.ts'
import { HttpProblem, noSuchSession } from '../lib/shared/problem.ts'

const Body = jsonObject(
  v.strictObject({ message_id: v.pipe(uuid(), v.toLowerCase()) }, strictMessage('is not a known field', 'the body must be a JSON object')),
  'the body must be a JSON object',
)

/**
 * PUT /v1/sessions/{id}/current: makes the path through a message the active one, continued
 * below it by the newest reply at each step; the next turn follows its end. 409 while a reply runs.
 */
export default defineFunction({
  name: 'session-current',
  method: 'PUT',
  path: '/v1/sessions/:id/current',
  async handle(request, { app, params, principal }) {
    const sessionId = sessionIdFrom(params)
    const body = parseInput(Body, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    if (!await app.store.getSession(sessionId, principal.userId)) throw noSuchSession(sessionId)
    const switched = await app.store.setCurrentMessage(sessionId, body.message_id)
    if (switched === 'missing') throw new HttpProblem(404, 'not_found', `No message has the id ${body.message_id} in session ${sessionId}.`)
    if (switched === 'busy') throw new HttpProblem(409, 'conflict', 'A reply is being generated in this session; cancel it or wait for it to finish.')
    return Response.json({ session_id: sessionId, current_message_id: switched.currentMessageId })
  },
})
