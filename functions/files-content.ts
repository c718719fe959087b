import { defineFunction } from '../lib/handler.ts'
import { idOf, noSuch } from '../lib/documents/files-api.ts'

/**
 * GET /v1/files/{id}/content: the file's bytes as uploaded, as a download (never shown inline: an
 * HTML file must not run as this site's page).
 */
export default defineFunction({
  name: 'files-content',
  method: 'GET',
  path: '/v1/files/:id/content',
  errors: 'openai',
  async handle(_request, { app, params, principal }) {
    const id = idOf(params.id)
    const found = id && (await app.database.documents.fileData(id, principal.userId))
    if (!found) throw noSuch('file', params.id!)
    return new Response(found.data, {
      headers: {
        'content-type': found.file.media_type,
        'content-length': String(found.data.byteLength),
        'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(found.file.filename)}`,
        'x-content-type-options': 'nosniff',
        'content-security-policy': "default-src 'none'; sandbox",
      },
    })
  },
})
