import * as v from 'valibot'
import type { Principal } from '../access/control.ts'
import type { AppContext } from '../context.ts'
import { idOf } from '../documents/files-api.ts'
import { retrieve, type RetrievedChunk } from '../documents/retrieval.ts'
import { chunkAttributes } from '../documents/vector-stores.ts'
import { parseAt } from '../http/validate.ts'
import { HttpProblem } from '../shared/problem.ts'
import type { InputItem, ServerToolItem, StoredResponse } from '../store/response-store.ts'
import { itemsOfResponse } from './response-input.ts'
import { newId, unsupported } from './wire.ts'

/**
 * The `file_search` tool of OpenAI's Responses API over this server's documents
 * (docs/documents.md "OpenAI"): a vector store is a collection. The search runs before the model
 * is asked, on the question (the input's last user message), with the same hybrid retrieval as a
 * chat's `collections`; what it found goes to the model as numbered sources to cite as [n], and
 * into the response as a `file_search_call` item.
 */

const FileSearchTool = v.looseObject({
  type: v.literal('file_search'),
  vector_store_ids: v.pipe(v.array(v.pipe(v.string(), v.maxLength(64))), v.minLength(1, 'must name at least one vector store'), v.maxLength(16, 'must name at most 16 vector stores')),
  max_num_results: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(50)))),
  filters: v.optional(v.nullable(v.unknown())),
  ranking_options: v.optional(v.nullable(v.looseObject({ ranker: v.optional(v.string()), score_threshold: v.optional(v.number()), hybrid_search: v.optional(v.unknown()) }))),
})

/** A request's file search, checked: the vector stores, how many results, and the tool as the response echoes it. */
export interface FileSearch {
  vectorStoreIds: string[]
  maxResults: number
  /** Where the tool is in `tools`, for the errors that name it. */
  path: string
  echo: Record<string, unknown> & { type: string }
}

/** The request's `file_search` tool, or null when it has none; 400 naming what it asks that is not done here. */
export function fileSearchOf(tools: Array<Record<string, unknown> & { type: string }>, defaultResults: number): FileSearch | null {
  const asked = tools.flatMap((tool, index) => (tool.type === 'file_search' ? [{ tool, index }] : []))
  if (asked.length === 0) return null
  if (asked.length > 1) throw unsupported(`tools[${asked[1]!.index}]`, `tools[${asked[1]!.index}]: a response takes one file_search tool; name all its vector stores in it.`)
  const { tool, index } = asked[0]!
  const path = `tools[${index}]`
  const parsed = parseAt(FileSearchTool, tool, path)
  if (parsed.filters != null) throw unsupported(`${path}.filters`, `${path}.filters: attribute filters are not supported: files here keep no attributes.`)
  const ranking = parsed.ranking_options
  if (ranking?.hybrid_search != null || (ranking?.score_threshold ?? 0) !== 0) {
    throw unsupported(`${path}.ranking_options`, `${path}.ranking_options: results are ranked by reciprocal rank fusion of the full-text and vector rankings here, with equal weights and no score threshold.`)
  }
  const maxResults = parsed.max_num_results ?? defaultResults
  return {
    vectorStoreIds: parsed.vector_store_ids,
    maxResults,
    path,
    echo: { type: 'file_search', vector_store_ids: parsed.vector_store_ids, max_num_results: maxResults, filters: null, ranking_options: { ranker: 'auto', score_threshold: 0 } },
  }
}

/**
 * What the search asks: the text of the last user message of the input, or (input without one,
 * such as function outputs) of the previous_response_id chain; null when there is none.
 */
export function questionOf(input: InputItem[], chain: StoredResponse[]): string | null {
  const lastUserText = (items: InputItem[]) => items.findLast((item): item is Extract<InputItem, { role: string }> => 'role' in item && item.role === 'user' && item.text.trim() !== '')?.text
  return lastUserText(input) ?? lastUserText(chain.flatMap(itemsOfResponse)) ?? null
}

/**
 * Runs the search over the caller's vector stores: the best chunks for `query`. A vector store
 * that is not the caller's answers 404 exactly as a missing one.
 */
export async function searchVectorStores(app: AppContext, principal: Principal, search: FileSearch, query: string | null): Promise<RetrievedChunk[]> {
  const store = app.database.documents
  const collectionIds: string[] = []
  for (const given of search.vectorStoreIds) {
    const id = idOf(given)
    if (!id || !(await store.getCollection(id, principal.userId))) {
      throw new HttpProblem(404, 'not_found', `Vector store with id '${given.slice(0, 64)}' not found.`, { param: `${search.path}.vector_store_ids` })
    }
    collectionIds.push(id)
  }
  if (query === null) return []
  return retrieve(app, await store.filesOf(principal.userId, [], collectionIds), query, search.maxResults)
}

/** The response's `file_search_call` item for the sources the model was given (numbered as it was given them). */
export function fileSearchItem(query: string | null, sources: RetrievedChunk[]): ServerToolItem {
  return {
    at: 0,
    type: 'file_search_call',
    id: newId('fs'),
    queries: query === null ? [] : [query],
    results: sources.map((source) => ({
      file_id: source.file_id,
      filename: source.filename,
      score: source.score,
      text: source.content,
      attributes: chunkAttributes(source),
    })),
  }
}
