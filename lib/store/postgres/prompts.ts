import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import type { PromptChange, PromptStore, SavedPrompt } from '../prompt-store.ts'
import { PostgresPart } from './part.ts'
import { iso, type Row } from './rows.ts'

const toPrompt = (row: Row): SavedPrompt =>
  ({ id: row.id, title: row.title, content: row.content, created_at: iso(row.created_at)!, updated_at: iso(row.updated_at)! })

export class PostgresPrompts extends PostgresPart implements PromptStore {
  async listPrompts(ownerId: string, limit: number): Promise<SavedPrompt[]> {
    const rows = await (await this.db())`
      SELECT id, title, content, created_at, updated_at FROM prompts WHERE owner_id = ${ownerId} ORDER BY title COLLATE "C", id LIMIT ${limit}`
    return rows.map(toPrompt)
  }

  async createPrompt(ownerId: string, { title, content }: Required<PromptChange>, max: number): Promise<SavedPrompt | 'full'> {
    return (await this.db()).begin(async (tx): Promise<SavedPrompt | 'full'> => {
      // One owner's creations in turn, so two at once cannot both pass the count.
      await tx`SELECT pg_advisory_xact_lock(hashtext('prompts:' || ${ownerId}))`
      const [counted] = await tx`SELECT count(*)::int AS count FROM prompts WHERE owner_id = ${ownerId}`
      if (Number(counted!.count) >= max) return 'full'
      const now = timestamp()
      const [row] = await tx`
        INSERT INTO prompts (id, owner_id, title, content, created_at, updated_at) VALUES (${randomUUID()}, ${ownerId}, ${title}, ${content}, ${now}, ${now})
        RETURNING id, title, content, created_at, updated_at`
      return toPrompt(row!)
    })
  }

  async updatePrompt(id: string, ownerId: string, change: PromptChange): Promise<SavedPrompt | undefined> {
    const [row] = await (await this.db())`
      UPDATE prompts SET title = coalesce(${change.title ?? null}, title), content = coalesce(${change.content ?? null}, content), updated_at = ${timestamp()}
      WHERE id = ${id} AND owner_id = ${ownerId} RETURNING id, title, content, created_at, updated_at`
    return row && toPrompt(row)
  }

  async deletePrompt(id: string, ownerId: string): Promise<boolean> {
    return (await (await this.db())`DELETE FROM prompts WHERE id = ${id} AND owner_id = ${ownerId}`).count > 0
  }
}
