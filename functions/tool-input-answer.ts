import * as v from 'valibot'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { jsonObject, parseInput, sessionIdFrom, strictMessage, wellFormedText } from '../lib/http/validate.ts'
import { timestamp } from '../lib/shared/clock.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { checkAnswer, MAX_FIELD_CHARS, MAX_FORM_FIELDS } from '../lib/tools/tool-inputs.ts'

const FieldValue = v.union([
  v.pipe(wellFormedText(), v.maxLength(MAX_FIELD_CHARS, `must be at most ${MAX_FIELD_CHARS} characters`)),
  v.pipe(v.number(), v.finite()),
  v.boolean(),
  v.pipe(v.array(v.pipe(wellFormedText(), v.maxLength(200))), v.maxLength(MAX_FORM_FIELDS)),
], 'must be text, a number, true or false, or a list of choices')

const InputBody = jsonObject(v.strictObject(
  {
    action: v.picklist(['accept', 'decline', 'cancel'], 'must be "accept", "decline" or "cancel"'),
    content: v.optional(v.pipe(v.record(v.pipe(v.string(), v.maxLength(200)), FieldValue, 'must be an object of the form\'s fields'), v.check((content) => Object.keys(content).length <= MAX_FORM_FIELDS, `must have at most ${MAX_FORM_FIELDS} fields`))),
  },
  strictMessage('is not a known field', 'the body must be a JSON object'),
), 'the body must be a JSON object')

/**
 * POST /v1/sessions/{id}/tool-calls/{call_id}/input: the session owner's answer to the form a
 * running tool call's server asks for (MCP elicitation, docs/tools.md "Input for a tool"): accept
 * with the form's values, decline, or cancel. 404 for a call that asks nothing (now), or is
 * someone else's; 400 for values that do not fit the form (nothing is recorded).
 */
export default defineFunction({
  name: 'tool-input-answer',
  method: 'POST',
  path: '/v1/sessions/:id/tool-calls/:call_id/input',
  async handle(request, { app, params, principal }) {
    const sessionId = sessionIdFrom(params)
    const callId = params.call_id!
    const body = parseInput(InputBody, await readJsonBody(request, app.config.maxBodyBytes), 'request body')
    const pending = /^call_[0-9a-f]{32}$/.test(callId) ? await app.database.inputs.pendingInput(sessionId, principal.userId, callId, timestamp()) : undefined
    if (!pending) throw new HttpProblem(404, 'not_found', `No tool call ${callId.slice(0, 64)} waits for input in session ${sessionId}.`)
    if (body.action !== 'accept' && body.content !== undefined) throw new HttpProblem(400, 'validation', 'request body: content goes only with "accept".', { param: 'content' })
    let content: Record<string, unknown> | undefined
    if (body.action === 'accept') {
      const checked = checkAnswer(pending.requestedSchema, body.content ?? {})
      if ('problems' in checked) throw new HttpProblem(400, 'validation', `request body: content does not fit the form: ${checked.problems.slice(0, 5).join('; ')}.`, { param: 'content' })
      content = checked.content
    }
    const answer = { action: body.action, ...(content ? { content } : {}) } as Parameters<typeof app.database.inputs.answerInput>[1]
    if (!await app.database.inputs.answerInput(pending.id, answer, timestamp())) {
      throw new HttpProblem(409, 'conflict', `The input tool call ${callId} asked for was answered already, or waited past TOOL_INPUT_TIMEOUT.`)
    }
    // The call waits here, or on another instance (woken through the database).
    app.tools.inputs.answered(pending.id)
    await app.database.cluster?.notifyInput(pending.id)
    return Response.json({ call_id: callId, input_id: pending.id, action: body.action })
  },
})
