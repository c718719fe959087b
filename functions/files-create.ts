import { randomUUID } from 'node:crypto'
import { defineFunction } from '../lib/handler.ts'
import { extractFile } from '../lib/documents/extract.ts'
import { checkEmbedModel, fileObject, readUpload, uploadBodyBytes } from '../lib/documents/files-api.ts'
import { timestamp } from '../lib/shared/clock.ts'
import { HttpProblem } from '../lib/shared/problem.ts'

/**
 * POST /v1/files: a document uploaded as OpenAI's Files API takes it (multipart/form-data, field
 * `file`, `purpose`), stored `in_progress` and read, cut and embedded in the background
 * (docs/documents.md). PDF, DOCX, Markdown, plain text, HTML and CSV, up to FILE_MAX_BYTES.
 */
export default defineFunction({
  name: 'files-create',
  method: 'POST',
  path: '/v1/files',
  errors: 'openai',
  multipart: true,
  maxBodyBytes: uploadBodyBytes,
  async handle(request, { app, principal }) {
    const upload = await readUpload(request, app.config)
    await checkEmbedModel(app)
    const { config } = app
    const stored = await app.database.documents.addFile(
      { id: randomUUID(), ownerId: principal.userId, embedModel: config.embedModel, ...upload },
      { files: config.userMaxFiles, bytes: config.userMaxFileBytes },
      timestamp(),
    )
    if (stored === 'files') throw new HttpProblem(429, 'rate_limit', `You have ${config.userMaxFiles} files, the most one user may keep (USER_MAX_FILES): delete some first.`)
    if (stored === 'bytes') throw new HttpProblem(413, 'payload_too_large', `Your files would take more than ${config.userMaxFileBytes} bytes, the most one user may keep (USER_MAX_FILE_BYTES): delete some first.`)
    app.ingestion.wake(extractFile)
    return Response.json(fileObject(stored))
  },
})
