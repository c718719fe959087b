import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import type { DatabaseSync } from 'node:sqlite'

export interface Migration {
  version: number
  name: string
  sql: string
}

export type Dialect = 'sqlite' | 'postgres'

/** Set by build.mjs: bundles carry their migrations, so a deployment needs no migrations/ folder. */
declare const __EMBEDDED_MIGRATIONS__: Record<Dialect, Migration[]> | undefined

const FILE_NAME = /^(\d{3})_([\w-]+)\.sql$/

export class MigrationError extends Error {
  override name = 'MigrationError'
}

/** The migrations in `folder` (a URL ending in `/`), ordered by version; NNN_name.sql each. */
export function readMigrations(folder: URL): Migration[] {
  return readdirSync(folder)
    .filter((file) => FILE_NAME.test(file))
    .sort()
    .map((file) => {
      const [, version, name] = FILE_NAME.exec(file)!
      return { version: Number(version), name: name!, sql: readFileSync(new URL(file, folder), 'utf8') }
    })
}

/** The migrations of `dialect` this code was built with: embedded in a bundle, else read from migrations/<dialect>/. */
export function bundledMigrations(dialect: Dialect = 'sqlite'): Migration[] {
  return typeof __EMBEDDED_MIGRATIONS__ === 'undefined'
    ? readMigrations(new URL(`../../migrations/${dialect}/`, import.meta.url))
    : __EMBEDDED_MIGRATIONS__[dialect]
}

export function checksum(sql: string): string {
  // Line endings follow the checkout (git's autocrlf), not the migration's meaning.
  return createHash('sha256').update(sql.replace(/\r\n/g, '\n')).digest('hex')
}

export interface AppliedMigration {
  version: number
  name: string
  checksum: string
}

/**
 * The migrations still to apply, in order, after checking what a database recorded: it refuses
 * (MigrationError) a database whose recorded migrations differ from `migrations` or go beyond
 * them. The same rules on every dialect.
 */
export function pendingMigrations(applied: AppliedMigration[], migrations: Migration[]): Array<Migration & { checksum: string }> {
  const known = new Set(migrations.map((migration) => migration.version))
  const latest = Math.max(0, ...known)
  for (const { version, name } of applied) {
    if (!known.has(version)) {
      throw new MigrationError(
        `The database has migration ${pad(version)}_${name}, which this code does not know (it knows up to ${pad(latest)}): it was written by a newer version of chat-ollama. Run that version, or restore a backup.`,
      )
    }
  }
  const recorded = new Map(applied.map((migration) => [migration.version, migration.checksum]))
  const pending: Array<Migration & { checksum: string }> = []
  for (const migration of migrations) {
    const sum = checksum(migration.sql)
    const recordedSum = recorded.get(migration.version)
    if (recordedSum === undefined) {
      pending.push({ ...migration, checksum: sum })
    } else if (recordedSum !== sum) {
      throw new MigrationError(
        `Migration ${pad(migration.version)}_${migration.name}.sql was changed after it was applied to this database (recorded checksum ${recordedSum.slice(0, 12)}, file ${sum.slice(0, 12)}). Restore the file, and put schema changes in a new migration.`,
      )
    }
  }
  return pending
}

export const migrationFailed = (migration: Migration, error: unknown) =>
  new MigrationError(`Migration ${pad(migration.version)}_${migration.name}.sql failed: ${(error as Error).message}`, { cause: error })

/** Applies each SQLite migration not yet recorded in schema_migrations, each in its own transaction. */
export function migrate(db: DatabaseSync, migrations: Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`)
  const applied = db.prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version').all()
    .map((row) => ({ version: Number(row.version), name: String(row.name), checksum: String(row.checksum) }))
  const insert = db.prepare('INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)')
  const newlyApplied: number[] = []
  for (const migration of pendingMigrations(applied, migrations)) {
    // A table rebuild (SQLite's way to change a constraint) drops a table others refer to: with
    // foreign keys on, that drop would cascade. Off for it (only outside a transaction), and checked before commit.
    const keysOff = migration.sql.startsWith(FOREIGN_KEYS_OFF)
    if (keysOff) db.exec('PRAGMA foreign_keys = OFF')
    db.exec('BEGIN IMMEDIATE')
    try {
      db.exec(migration.sql)
      if (keysOff && db.prepare('PRAGMA foreign_key_check').all().length > 0) throw new Error('it left rows whose foreign keys point nowhere')
      insert.run(migration.version, migration.name, migration.checksum, new Date().toISOString())
      db.exec('COMMIT')
    } catch (error) {
      db.exec('ROLLBACK')
      throw migrationFailed(migration, error)
    } finally {
      if (keysOff) db.exec('PRAGMA foreign_keys = ON')
    }
    newlyApplied.push(migration.version)
  }
  return newlyApplied
}

/** The first line of a SQLite migration that must run with foreign keys off (a table rebuild). */
const FOREIGN_KEYS_OFF = '-- foreign_keys: off'

const pad = (version: number) => String(version).padStart(3, '0')
