import * as v from 'valibot'
import { limitedUserOf } from '../lib/access/control.ts'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { jsonObject, parseInput, sessionIdFrom, strictMessage } from '../lib/http/validate.ts'
import { timestamp } from '../lib/shared/clock.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

const AnswerBody = jsonObject(v.strictObject(
  { approve: v.boolean('is required and must be true or false') },
  strictMessage('is not a known field', 'the body must be a JSON object'),
), 'the body must be a JSON object')

/**
 * POST /v1/sessions/{id}/tool-calls/{call_id}: the session owner's answer to a call of an `ask`
 * tool its reply waits on (docs/tools.md). Once every call of the reply is answered, the reply
 * goes on here (follow it with GET /v1/sessions/{id}/stream). 404 for a call that is unknown or
 * someone else's, 409 once it is answered or past TOOL_APPROVAL_TIMEOUT.
 */
export default defineFunction({
  name: 'tool-call-answer',
  method: 'POST',
  path: '/v1/sessions/:id/tool-calls/:call_id',
  async handle(request, { app, params, principal }) {
    const sessionId = sessionIdFrom(params)
    const callId = params.call_id!
    const { approve } = parseInput(AnswerBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const answer = /^call_[0-9a-f]{32}$/.test(callId) ? await app.store.answerApproval(sessionId, principal.userId, callId, approve, timestamp()) : 'missing'
    if (answer === 'missing') throw new HttpProblem(404, 'not_found', `No tool call ${callId.slice(0, 64)} waits for an answer in session ${sessionId}.`)
    if (answer === 'answered') throw new HttpProblem(409, 'conflict', `The tool call ${callId} was answered already, or waited past TOOL_APPROVAL_TIMEOUT (which counts as denied).`)
    if (answer.remaining === 0) await app.approvals.resume({ replyId: answer.replyId, sessionId }, limitedUserOf(principal))
    return Response.json({ call_id: callId, approved: approve })
  },
})
