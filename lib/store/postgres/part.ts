import type { Sql } from 'postgres'

/**
 * What each PostgreSQL store part shares: the pool, and the migration every query waits for
 * (`ready`), so the parts can be made at once and used before the migration has run.
 */
export abstract class PostgresPart {
  private readonly sql: Sql
  private readonly ready: Promise<unknown>
  /** The instance whose process this is: it owns the replies and responses it starts. */
  protected readonly instanceId: string

  constructor(sql: Sql, ready: Promise<unknown>, instanceId: string) {
    this.sql = sql
    this.ready = ready
    this.instanceId = instanceId
  }

  /** The pool, once the schema is migrated. */
  protected async db(): Promise<Sql> {
    await this.ready
    return this.sql
  }
}
