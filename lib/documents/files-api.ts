import type { AppContext } from '../context.ts'
import { unixSeconds } from '../openai/wire.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { Collection, DocumentStore, StoredFile } from '../store/document-store.ts'
import { fileKindOf, mediaTypeOf } from './file-kind.ts'

/** Room a multipart body needs besides its file: boundaries, headers, the purpose field. */
const MULTIPART_OVERHEAD = 64 * 1024
const MAX_FILENAME_CHARS = 255
const MAX_PURPOSE_CHARS = 64
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The largest POST /v1/files body: FILE_MAX_BYTES and the multipart around it. */
export const uploadBodyBytes = (config: AppContext['config']) => config.fileMaxBytes + MULTIPART_OVERHEAD

/** A file as the API shows it: OpenAI's file object, with how far its ingestion is. */
export function fileObject(file: StoredFile) {
  return {
    id: file.id,
    object: 'file' as const,
    bytes: file.bytes,
    created_at: unixSeconds(file.created_at),
    filename: file.filename,
    purpose: file.purpose,
    // OpenAI's (deprecated) file statuses, which its SDKs still read.
    status: file.status === 'completed' ? 'processed' : file.status === 'failed' ? 'error' : 'uploaded',
    status_details: file.last_error,
    kind: file.kind,
    media_type: file.media_type,
    pages: file.pages,
    ingestion: {
      status: file.status,
      chunks_done: file.chunks_done,
      chunks_total: file.chunks_total,
      last_error: file.last_error,
      embed_model: file.embed_model,
      completed_at: file.completed_at,
    },
  }
}

export function collectionObject(collection: Collection) {
  return { ...collection, object: 'collection' as const }
}

/** 404 for an id that is not the caller's (or not an id at all), worded as for a missing one. */
export function noSuch(what: 'file' | 'collection', id: string): HttpProblem {
  return new HttpProblem(404, 'not_found', `No ${what} has the id ${id.slice(0, 64)}.`, { param: `${what}_id` })
}

/** The id from a route when it can be one (a UUID), else undefined: answered as missing without a query. */
export const idOf = (param: string | undefined): string | undefined => {
  const id = param?.toLowerCase()
  return id && UUID.test(id) ? id : undefined
}

/**
 * The uploaded file of a multipart/form-data body (field `file`, as OpenAI's Files API takes it),
 * its `purpose` (default `assistants`), and its kind from its bytes and name; 415 for a body that
 * is not multipart or a file that is not a document this server reads, 413 past FILE_MAX_BYTES.
 */
export async function readUpload(request: Request, config: AppContext['config']) {
  const type = request.headers.get('content-type') ?? ''
  if (!/^multipart\/form-data\s*;/i.test(type)) {
    await request.body?.cancel().catch(() => {})
    throw new HttpProblem(415, 'unsupported_media_type', 'The body must be multipart/form-data with the file in a field named file.')
  }
  let form: FormData
  try {
    form = await request.formData()
  } catch (error) {
    if (error instanceof HttpProblem) throw error
    throw new HttpProblem(400, 'validation', 'The multipart body cannot be read.')
  }
  const file = form.get('file')
  if (!(file instanceof File)) throw new HttpProblem(400, 'validation', 'The body has no file in a field named file.', { param: 'file' })
  if (file.size > config.fileMaxBytes) throw new HttpProblem(413, 'payload_too_large', `The file is ${file.size} bytes; at most ${config.fileMaxBytes} are taken (FILE_MAX_BYTES).`, { param: 'file' })
  if (file.size === 0) throw new HttpProblem(400, 'validation', 'The file is empty.', { param: 'file' })
  const filename = (file.name || 'file').replace(/[\u0000-\u001f\u007f]/g, '').slice(0, MAX_FILENAME_CHARS) || 'file'
  const purpose = form.get('purpose') ?? 'assistants'
  if (typeof purpose !== 'string' || purpose.length > MAX_PURPOSE_CHARS || !/^[\w.-]+$/.test(purpose)) throw new HttpProblem(400, 'validation', 'purpose must be a word such as assistants.', { param: 'purpose' })
  const data = new Uint8Array(await file.arrayBuffer())
  const kind = fileKindOf(data, filename)
  if (!kind) {
    throw new HttpProblem(415, 'unsupported_media_type', `${filename} is not a document this server reads: PDF, DOCX, Markdown, plain text, HTML or CSV.`, { param: 'file' })
  }
  return { filename, purpose, data, kind, mediaType: mediaTypeOf(kind) }
}

/**
 * Refuses an upload that could never be embedded: EMBED_MODEL not installed (400, with the
 * command that installs it) or not an embedding model (400 `model_capability`). Ollama being away
 * is no reason to refuse: the file waits for it.
 */
export async function checkEmbedModel(app: AppContext): Promise<void> {
  const model = app.config.embedModel
  try {
    await app.ollama.requireCapability(model, 'embedding', 'embed documents (EMBED_MODEL must name an embedding model such as nomic-embed-text)')
  } catch (error) {
    if (!(error instanceof HttpProblem)) throw error
    if (error.status === 404) throw new HttpProblem(400, 'model_not_found', `EMBED_MODEL ${model} is not installed in Ollama: ollama pull ${model}`)
    if (error.status === 400) throw error
  }
}

/**
 * Takes a file out of one of the owner's collections (the file stays), the ids as a route gave
 * them; 404 for a collection or file that is not the owner's, or not in it. The file's id.
 */
export async function removeFromCollection(store: DocumentStore, ownerId: string, collectionParam: string, fileParam: string): Promise<string> {
  const id = idOf(collectionParam)
  const fileId = idOf(fileParam)
  if (!id || !(await store.getCollection(id, ownerId))) throw noSuch('collection', collectionParam)
  if (!fileId || !(await store.removeFromCollection(id, fileId, ownerId))) throw noSuch('file', fileParam)
  return fileId
}
