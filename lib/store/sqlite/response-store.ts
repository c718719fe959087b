import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import type { ServerToolItem, ResponseEnd, ResponseParams, ResponseReasoning, ResponseStatus, ResponseStore, StoredResponse } from '../response-store.ts'
import { followChain, inputImages, storedInput } from '../response-store.ts'

/** Responses in the chat database (migration 008), each readable only by its owner. */
export class SqliteResponseStore implements ResponseStore {
  readonly statements

  constructor(db: DatabaseSync) {
    const columns = `r.id, r.owner_id, r.session_id, r.previous_response_id, r.model, q.instructions, r.status, r.background, q.input, r.output_text, r.deltas,
      r.tool_calls, r.mcp_items, r.reasoning, r.usage, r.incomplete_reason, r.error, q.params, r.created_at, r.completed_at`
    this.statements = {
      insert: db.prepare(
        `INSERT INTO responses (id, owner_id, session_id, previous_response_id, model, status, background, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRequest: db.prepare('INSERT INTO response_requests (response_id, instructions, input, params) VALUES (?, ?, ?, ?)'),
      insertImage: db.prepare(
        `INSERT INTO attachments (id, response_id, position, media_type, width, height, size, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      get: db.prepare(`SELECT ${columns} FROM responses r JOIN response_requests q ON q.response_id = r.id WHERE r.id = ? AND r.owner_id = ?`),
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      start: db.prepare(`UPDATE responses SET status = 'in_progress' WHERE id = ? AND status = 'queued'`),
      checkpoint: db.prepare(`UPDATE responses SET output_text = ?, deltas = ?, mcp_items = ?, reasoning = ? WHERE id = ? AND status IN ('queued', 'in_progress')`),
      finish: db.prepare(
        `UPDATE responses SET status = ?, output_text = ?, deltas = ?, tool_calls = ?, mcp_items = ?, reasoning = ?, usage = ?, incomplete_reason = ?, error = ?, completed_at = ?
         WHERE id = ? AND status IN ('queued', 'in_progress')`,
      ),
      remove: db.prepare('DELETE FROM responses WHERE id = ? AND owner_id = ?'),
      interruptRunning: db.prepare(
        `UPDATE responses SET status = 'failed', error = ?, completed_at = ? WHERE status IN ('queued', 'in_progress')`,
      ),
    } satisfies Record<string, StatementSync>
  }

  /** Stores a new response and what it was asked, in one transaction (migrations/011: the request in a table of its own). */
  async insert(response: Pick<StoredResponse, 'id' | 'owner_id' | 'session_id' | 'previous_response_id' | 'model' | 'instructions' | 'status' | 'background' | 'input' | 'params' | 'created_at'>): Promise<void> {
    const { begin, commit, rollback, insert, insertRequest, insertImage } = this.statements
    begin.run()
    try {
      insert.run(response.id, response.owner_id, response.session_id, response.previous_response_id, response.model, response.status, response.background ? 1 : 0, response.created_at)
      insertRequest.run(response.id, response.instructions, JSON.stringify(storedInput(response.input)), JSON.stringify(response.params))
      for (const [position, image] of inputImages(response).entries()) {
        insertImage.run(image.id, response.id, position, image.media_type, image.width, image.height, image.bytes, image.data, response.created_at)
      }
      commit.run()
    } catch (error) {
      rollback.run()
      throw error
    }
  }

  /** The response when it exists and belongs to `ownerId`; someone else's is as absent as a missing one. */
  async get(id: string, ownerId: string): Promise<StoredResponse | undefined> {
    const row = this.statements.get.get(id, ownerId)
    return row && toResponse(row)
  }

  async markStarted(id: string): Promise<void> {
    this.statements.start.run(id)
  }

  async checkpoint(id: string, text: string, deltas: number[], mcpItems: ServerToolItem[], reasoning: ResponseReasoning | null): Promise<boolean> {
    return Number(this.statements.checkpoint.run(text, JSON.stringify(deltas), mcpItems.length ? JSON.stringify(mcpItems) : null, reasoning ? JSON.stringify(reasoning) : null, id).changes) > 0
  }

  /** Writes the end; false when the response is no longer running (deleted, or ended already). */
  async finish(id: string, end: ResponseEnd): Promise<boolean> {
    const json = (value: unknown) => (value == null ? null : JSON.stringify(value))
    return Number(this.statements.finish.run(end.status, end.outputText, JSON.stringify(end.deltas), end.toolCalls.length ? JSON.stringify(end.toolCalls) : null, end.mcpItems.length ? JSON.stringify(end.mcpItems) : null, json(end.reasoning), json(end.usage), end.incompleteReason, json(end.error), timestamp(), id).changes) > 0
  }

  async delete(id: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.remove.run(id, ownerId).changes) > 0
  }

  /**
   * The conversation a response continues, oldest first: each earlier response's input and output
   * along the previous_response_id chain, all of `ownerId`'s. A chain from an older response
   * forks; nothing is rewritten.
   */
  async chain(lastId: string, ownerId: string): Promise<StoredResponse[]> {
    return followChain((id) => this.get(id, ownerId), lastId)
  }

  /** At start-up: responses a crash or kill left running end `failed`, keeping their checkpointed text. */
  async interruptRunning(): Promise<number> {
    const error = JSON.stringify({ code: 'server_error', message: 'The server stopped before the response was finished.' })
    return Number(this.statements.interruptRunning.run(error, timestamp()).changes)
  }
}

type Row = Record<string, SQLInputValue>

function toResponse(row: Row): StoredResponse {
  const parsed = <T>(value: SQLInputValue | undefined, fallback: T): T => (value == null ? fallback : (JSON.parse(String(value)) as T))
  return {
    id: String(row.id),
    owner_id: String(row.owner_id),
    session_id: row.session_id == null ? null : String(row.session_id),
    previous_response_id: row.previous_response_id == null ? null : String(row.previous_response_id),
    model: String(row.model),
    instructions: row.instructions == null ? null : String(row.instructions),
    status: row.status as ResponseStatus,
    background: Number(row.background) === 1,
    input: parsed(row.input, []),
    output_text: String(row.output_text),
    deltas: parsed(row.deltas, []),
    tool_calls: parsed(row.tool_calls, []),
    mcp_items: parsed(row.mcp_items, []),
    reasoning: parsed(row.reasoning, null),
    usage: parsed(row.usage, null),
    incomplete_reason: row.incomplete_reason == null ? null : String(row.incomplete_reason),
    error: parsed(row.error, null),
    params: parsed(row.params, {} as ResponseParams),
    created_at: String(row.created_at),
    completed_at: row.completed_at == null ? null : String(row.completed_at),
  }
}
