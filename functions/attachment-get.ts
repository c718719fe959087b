import { defineFunction } from '../lib/handler.ts'
import { attachmentHeaders } from '../lib/images/attachments.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/**
 * GET /v1/attachments/{id}: the bytes of an image stored with one of the caller's messages (or a
 * stored response's input); another user's id is answered like a missing one.
 */
export default defineFunction({
  name: 'attachment-get',
  method: 'GET',
  path: '/v1/attachments/:id',
  async handle(_request, { app, params, principal }) {
    const id = params.id!.toLowerCase()
    const image = /^[0-9a-f-]{36}$/.test(id) ? await app.store.getAttachment(id, principal.userId) : undefined
    if (!image) throw new HttpProblem(404, 'not_found', `No attachment has the id ${params.id!.slice(0, 64)}.`)
    return new Response(image.data, { headers: attachmentHeaders(image.media_type, image.data.byteLength) })
  },
})
