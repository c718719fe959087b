import type { Sql } from 'postgres'
import { migrationFailed, pendingMigrations, type Migration } from '../migrations.ts'

/** The advisory lock that serialises migrating: instances starting together migrate once. */
const MIGRATION_LOCK = 0x63_68_61_74 // "chat"

/**
 * Applies each PostgreSQL migration not yet recorded in schema_migrations, all in one
 * transaction under an advisory lock: instances that start together wait for the first, then
 * find everything applied. Refuses, like SQLite's runner, a database whose recorded migrations
 * differ from `migrations` or go beyond them. Returns the versions it applied.
 */
export async function migratePostgres(sql: Sql, migrations: Migration[]): Promise<number[]> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      checksum   text NOT NULL,
      applied_at timestamptz NOT NULL
    )`
    const applied = await tx<Array<{ version: number; name: string; checksum: string }>>`SELECT version, name, checksum FROM schema_migrations ORDER BY version`
    const pending = pendingMigrations(applied.map((row) => ({ ...row })), migrations)
    for (const migration of pending) {
      try {
        // A migration file holds several statements: the simple protocol takes them at once.
        await tx.unsafe(migration.sql).simple()
      } catch (error) {
        throw migrationFailed(migration, error)
      }
      await tx`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (${migration.version}, ${migration.name}, ${migration.checksum}, now())`
    }
    return pending.map((migration) => migration.version)
  })
}
