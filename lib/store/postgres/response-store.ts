import type { JSONValue } from 'postgres'
import { PostgresPart } from './part.ts'
import { timestamp } from '../../shared/clock.ts'
import type { ServerToolItem, ResponseEnd, ResponseParams, ResponseReasoning, ResponseStatus, ResponseStore, StoredResponse } from '../response-store.ts'
import { followChain, inputImages, storedInput } from '../response-store.ts'
import { iso } from './rows.ts'

type Row = Record<string, any>

/** Our records as postgres.js's JSON values (they are plain JSON data). */
const asJson = (value: unknown) => value as JSONValue

/**
 * OpenAI's Responses on PostgreSQL, each readable only by its owner; its request in a table of its own.
 * Input, parameters and tool calls are `json` passed as text, so they come back exactly as written.
 */
export class PostgresResponseStore extends PostgresPart implements ResponseStore {

  async insert(response: Pick<StoredResponse, 'id' | 'owner_id' | 'session_id' | 'previous_response_id' | 'model' | 'instructions' | 'status' | 'background' | 'input' | 'params' | 'created_at'>): Promise<void> {
    const sql = await this.db()
    await sql.begin(async (tx) => {
      await tx`
        INSERT INTO responses (id, owner_id, session_id, previous_response_id, model, status, background, created_at, owner_instance)
        VALUES (${response.id}, ${response.owner_id}, ${response.session_id}, ${response.previous_response_id}, ${response.model}, ${response.status}, ${response.background}, ${response.created_at}, ${this.instanceId})`
      await tx`
        INSERT INTO response_requests (response_id, instructions, input, params)
        VALUES (${response.id}, ${response.instructions}, ${JSON.stringify(storedInput(response.input))}::text::json, ${JSON.stringify(response.params)}::text::json)`
      for (const [position, image] of inputImages(response).entries()) {
        await tx`
          INSERT INTO attachments (id, response_id, position, media_type, width, height, size, data, created_at)
          VALUES (${image.id}, ${response.id}, ${position}, ${image.media_type}, ${image.width}, ${image.height}, ${image.bytes},
            ${Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength)}, ${response.created_at})`
      }
    })
  }

  async get(id: string, ownerId: string): Promise<StoredResponse | undefined> {
    const [row] = await (await this.db())`
      SELECT r.id, r.owner_id, r.session_id, r.previous_response_id, r.model, q.instructions, r.status, r.background, q.input, r.output_text,
        r.deltas, r.tool_calls, r.mcp_items, r.reasoning, r.usage, r.incomplete_reason, r.error, q.params, r.created_at, r.completed_at
      FROM responses r JOIN response_requests q ON q.response_id = r.id WHERE r.id = ${id} AND r.owner_id = ${ownerId}`
    return row && toResponse(row)
  }

  async markStarted(id: string): Promise<void> {
    await (await this.db())`UPDATE responses SET status = 'in_progress' WHERE id = ${id} AND status = 'queued'`
  }

  async checkpoint(id: string, text: string, deltas: number[], mcpItems: ServerToolItem[], reasoning: ResponseReasoning | null): Promise<boolean> {
    const sql = await this.db()
    const result = await sql`
      UPDATE responses SET output_text = ${text}, deltas = ${sql.json(deltas)}, mcp_items = ${mcpItems.length ? JSON.stringify(mcpItems) : null}::text::json,
        reasoning = ${reasoning ? JSON.stringify(reasoning) : null}::text::json
      WHERE id = ${id} AND status IN ('queued', 'in_progress')`
    return result.count > 0
  }

  async finish(id: string, end: ResponseEnd): Promise<boolean> {
    const sql = await this.db()
    const json = (value: unknown) => (value == null ? null : sql.json(asJson(value)))
    const result = await sql`
      UPDATE responses SET status = ${end.status}, output_text = ${end.outputText}, deltas = ${sql.json(end.deltas)},
        tool_calls = ${end.toolCalls.length ? JSON.stringify(end.toolCalls) : null}::text::json,
        mcp_items = ${end.mcpItems.length ? JSON.stringify(end.mcpItems) : null}::text::json, usage = ${json(end.usage)},
        reasoning = ${end.reasoning ? JSON.stringify(end.reasoning) : null}::text::json,
        incomplete_reason = ${end.incompleteReason}, error = ${json(end.error)}, completed_at = ${timestamp()}
      WHERE id = ${id} AND status IN ('queued', 'in_progress')`
    return result.count > 0
  }

  async delete(id: string, ownerId: string): Promise<boolean> {
    return (await (await this.db())`DELETE FROM responses WHERE id = ${id} AND owner_id = ${ownerId}`).count > 0
  }

  async chain(lastId: string, ownerId: string): Promise<StoredResponse[]> {
    return followChain((id) => this.get(id, ownerId), lastId)
  }

  async interruptRunning(): Promise<number> {
    const sql = await this.db()
    const error = sql.json({ code: 'server_error', message: 'The server stopped before the response was finished.' })
    const result = await sql`
      UPDATE responses SET status = 'failed', error = ${error}, completed_at = ${timestamp()}
      WHERE status IN ('queued', 'in_progress') AND owner_instance = ${this.instanceId}`
    return result.count
  }
}

function toResponse(row: Row): StoredResponse {
  return {
    id: row.id,
    owner_id: row.owner_id,
    session_id: row.session_id,
    previous_response_id: row.previous_response_id,
    model: row.model,
    instructions: row.instructions,
    status: row.status as ResponseStatus,
    background: row.background,
    input: row.input,
    output_text: row.output_text,
    deltas: row.deltas,
    tool_calls: row.tool_calls ?? [],
    mcp_items: row.mcp_items ?? [],
    reasoning: row.reasoning ?? null,
    usage: row.usage,
    incomplete_reason: row.incomplete_reason,
    error: row.error,
    params: row.params as ResponseParams,
    created_at: iso(row.created_at)!,
    completed_at: iso(row.completed_at),
  }
}
