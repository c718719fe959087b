import { readJsonBody } from '../lib/http/body.ts'
import { answerOnce, fingerprintOf } from '../lib/retries/idempotency.ts'
import type { Session } from '../lib/store/chat-store.ts'
import { defineFunction } from '../lib/handler.ts'
import { checkedSettings, createSessionBodySchema } from '../lib/http/session-input.ts'
import { parseInput } from '../lib/http/validate.ts'
import { knowledgeFiles } from '../lib/documents/knowledge.ts'
import type { Config } from '../lib/shared/config.ts'

const schemas = new WeakMap<Config, ReturnType<typeof createSessionBodySchema>>()

/** POST /v1/sessions: an empty conversation, optionally titled, with a system prompt and settings; once per Idempotency-Key. */
export default defineFunction({
  name: 'sessions-create',
  method: 'POST',
  path: '/v1/sessions',
  async handle(request, { app, url, principal }) {
    let schema = schemas.get(app.config)
    if (!schema) schemas.set(app.config, (schema = createSessionBodySchema(app.config)))
    const body = parseInput(schema, (await readJsonBody(request, app.config.maxBodyBytes)) ?? {}, 'request body')
    if (body.model !== undefined || body.think) await checkedSettings(app, body.model ?? null, body.think ?? null)
    // Files and collections it answers from must be the caller's (another user's are as missing ones).
    await knowledgeFiles(app.database.documents, principal.userId, body.files ?? [], body.collections ?? [], body)
    const { title, system, ...settings } = body
    const create = async () => ({ status: 201, body: await app.store.createSession({ ...(title ? { title } : {}), system, settings, ownerId: principal.userId }) })
    return answerOnce(app, request, principal.userId, fingerprintOf('POST /v1/sessions', body), create, (session: Session) => ({ location: `${url.pathname}/${session.id}` }))
  },
})
