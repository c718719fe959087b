import { limitedUserOf } from '../lib/access/control.ts'
import { answerTurn } from '../lib/generation/chat-turn.ts'
import { chatOnce } from '../lib/generation/replay.ts'
import { defineFunction } from '../lib/handler.ts'
import { readJsonBody } from '../lib/http/body.ts'
import { regenerateBodySchema } from '../lib/http/chat-input.ts'
import { parseInput, sessionIdFrom } from '../lib/http/validate.ts'
import type { Config } from '../lib/shared/config.ts'
import { HttpProblem, noSuchSession } from '../lib/shared/problem.ts'
import { questionBefore, toolsFor } from '../lib/tools/tool-turn.ts'
import { knowledgeFiles } from '../lib/documents/knowledge.ts'
import { retrieve } from '../lib/documents/retrieval.ts'
import type { AppContext } from '../lib/context.ts'
import type { Message } from '../lib/store/chat-store.ts'

const schemas = new WeakMap<Config, ReturnType<typeof regenerateBodySchema>>()

/** Only a reply with text that answers its question directly (no tool steps) is continued. */
async function continuable(app: AppContext, sessionId: string, reply: Message): Promise<void> {
  const refuse = (why: string) => new HttpProblem(400, 'validation', `continue: ${why}`, { errors: [{ path: 'continue', message: why }] })
  if (reply.role !== 'assistant') throw refuse('only a reply can be continued')
  if (!reply.content.trim()) throw refuse('the reply has no text to go on from')
  if (reply.tool_calls?.length) throw refuse('a reply that called tools is answered again, not continued')
  const question = reply.parent_id ? await app.store.getSessionMessage(sessionId, reply.parent_id) : undefined
  if (question?.role !== 'user') throw refuse('a reply after tool steps is answered again, not continued')
}

/**
 * POST /v1/sessions/{id}/messages/{message_id}/regenerate: another reply to the question an
 * assistant message answered, as a sibling of it; given a question (a user message), a reply to
 * it (its first, when Ollama could not answer it before); with `continue`, a new version of a cut
 * reply that starts with its text and goes on from there. The new reply becomes the active one. Answers
 * exactly like POST /v1/chat (SSE, or JSON with `stream: false`), with sources from the chat's
 * files and collections when it has any.
 */
export default defineFunction({
  name: 'session-regenerate',
  method: 'POST',
  path: '/v1/sessions/:id/messages/:message_id/regenerate',
  async handle(request, { app, params, principal }) {
    const acceptedAt = performance.now()
    const sessionId = sessionIdFrom(params)
    let schema = schemas.get(app.config)
    if (!schema) schemas.set(app.config, (schema = regenerateBodySchema(app.config)))
    const body = parseInput(schema, (await readJsonBody(request, app.config.maxBodyBytes)) ?? {}, 'request body')
    const route = `POST /v1/sessions/${sessionId}/messages/${params.message_id}/regenerate`
    return chatOnce(app, request, principal.userId, route, body, body.stream, async (onStarted) => {
      const session = await app.store.getSession(sessionId, principal.userId)
      if (!session) throw noSuchSession(sessionId)
      const retried = await app.store.getSessionMessage(sessionId, params.message_id!)
      if (retried?.role !== 'assistant' && retried?.role !== 'user') throw new HttpProblem(404, 'not_found', `No reply or question has the id ${params.message_id} in session ${sessionId}.`)
      if (body.continue) await continuable(app, sessionId, retried)
      // By default the model of the reply it retries; the chat's options and think, unless sent.
      const model = body.model ?? retried.model ?? session.model ?? app.config.defaultModel
      const options = { ...session.options, ...body.options }
      const think = body.think ?? session.think ?? undefined
      const tools = await toolsFor(app, model, body.tools)
      // A question is answered (again); a reply that followed tool steps answers the question before
      // them: the whole turn is run again. A continued reply follows its question, as the one it continues.
      const parentId = retried.role === 'user' ? retried.id : body.continue ? retried.parent_id : await questionBefore(app.store, sessionId, retried.parent_id)
      // The chat's documents answer the question again (docs/documents.md).
      const knowledge = await knowledgeFiles(app.database.documents, principal.userId, session.files, session.collections)
      const question = knowledge.length && parentId ? await app.store.getSessionMessage(sessionId, parentId) : undefined
      const sources = question ? await retrieve(app, knowledge, question.content, app.config.ragTopK) : []
      const reservation = await app.generations.reserve(sessionId, limitedUserOf(principal))
      const prefix = body.continue ? retried.content : undefined
      return answerTurn(app, reservation, { model, options, think, format: body.format, stream: body.stream, parentId, tools, onStarted, sources, prefix }, principal.userId, acceptedAt)
    })
  },
})
