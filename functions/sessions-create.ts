import { readJsonBody } from '../lib/http/body.ts'
import { answerOnce, fingerprintOf } from '../lib/retries/idempotency.ts'
import type { Session } from '../lib/store/chat-store.ts'
import { defineFunction } from '../lib/handler.ts'
import { CreateSessionBody } from '../lib/http/session-input.ts'
import { HttpProblem } from '../lib/shared/problem.ts'
import { parseInput, withinChars } from '../lib/http/validate.ts'

/** POST /v1/sessions: an empty conversation, optionally titled and with a system prompt; once per Idempotency-Key. */
export default defineFunction({
  name: 'sessions-create',
  method: 'POST',
  path: '/v1/sessions',
  async handle(request, { app, url, principal }) {
    const body = parseInput(CreateSessionBody, (await readJsonBody(request, app.config.maxBodyBytes)) ?? {}, 'request body')
    if (body.system !== undefined && !withinChars(body.system, app.config.maxMessageChars)) {
      throw new HttpProblem(400, 'validation', `The request body is invalid: system: must be at most ${app.config.maxMessageChars} characters (MAX_MESSAGE_CHARS)`, {
        errors: [{ path: 'system', message: `must be at most ${app.config.maxMessageChars} characters (MAX_MESSAGE_CHARS)` }],
      })
    }
    const create = async () => ({ status: 201, body: await app.store.createSession({ ...(body.title ? { title: body.title } : {}), system: body.system, ownerId: principal.userId }) })
    return answerOnce(app, request, principal.userId, fingerprintOf('POST /v1/sessions', body), create, (session: Session) => ({ location: `${url.pathname}/${session.id}` }))
  },
})
