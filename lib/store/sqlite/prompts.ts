import { randomUUID } from 'node:crypto'
import type { SQLInputValue } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import type { PromptChange, PromptStore, SavedPrompt } from '../prompt-store.ts'
import { SqliteRole } from './database.ts'

const COLUMNS = 'id, title, content, created_at, updated_at'

const toPrompt = (row: Record<string, SQLInputValue>): SavedPrompt =>
  ({ id: String(row.id), title: String(row.title), content: String(row.content), created_at: String(row.created_at), updated_at: String(row.updated_at) })

export class SqlitePrompts extends SqliteRole implements PromptStore {
  readonly statements = this.prepare({
    listPrompts: `SELECT ${COLUMNS} FROM prompts WHERE owner_id = ? ORDER BY title, id LIMIT ?`,
    countPrompts: 'SELECT count(*) AS count FROM prompts WHERE owner_id = ?',
    insertPrompt: 'INSERT INTO prompts (id, owner_id, title, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    getPrompt: `SELECT ${COLUMNS} FROM prompts WHERE id = ? AND owner_id = ?`,
    updatePrompt: 'UPDATE prompts SET title = coalesce(?, title), content = coalesce(?, content), updated_at = ? WHERE id = ? AND owner_id = ?',
    deletePrompt: 'DELETE FROM prompts WHERE id = ? AND owner_id = ?',
  })

  async listPrompts(ownerId: string, limit: number): Promise<SavedPrompt[]> {
    return this.statements.listPrompts.all(ownerId, limit).map(toPrompt)
  }

  async createPrompt(ownerId: string, { title, content }: Required<PromptChange>, max: number): Promise<SavedPrompt | 'full'> {
    return this.database.transaction(() => {
      if (Number(this.statements.countPrompts.get(ownerId)!.count) >= max) return 'full'
      const id = randomUUID()
      const now = timestamp()
      this.statements.insertPrompt.run(id, ownerId, title, content, now, now)
      return toPrompt(this.statements.getPrompt.get(id, ownerId)!)
    })
  }

  async updatePrompt(id: string, ownerId: string, change: PromptChange): Promise<SavedPrompt | undefined> {
    return this.database.transaction(() => {
      if (Number(this.statements.updatePrompt.run(change.title ?? null, change.content ?? null, timestamp(), id, ownerId).changes) === 0) return undefined
      return toPrompt(this.statements.getPrompt.get(id, ownerId)!)
    })
  }

  async deletePrompt(id: string, ownerId: string): Promise<boolean> {
    return Number(this.statements.deletePrompt.run(id, ownerId).changes) > 0
  }
}
