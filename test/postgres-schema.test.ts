/**
 * The PostgreSQL schema and its migration runner, on a throwaway cluster of the test's own
 * (test/support/postgres.ts): applied once with checksums, safe when instances start together,
 * refusing edited or newer migrations like SQLite's runner, and keeping the rules SQLite's
 * triggers keep.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import postgres from 'postgres'
import { bundledMigrations, checksum, MigrationError, type Migration } from '../lib/store/migrations.ts'
import { migratePostgres } from '../lib/store/postgres/migrate.ts'
import { PostgresStore } from '../lib/store/postgres/store.ts'
import { postgresCluster } from './support/postgres.ts'

async function freshDatabase(t: TestContext) {
  const url = await (await postgresCluster()).newDatabase()
  const sql = postgres(url, { onnotice: () => {} })
  t.after(() => sql.end())
  return { url, sql }
}

test('every migration is applied once, recorded with its checksum; a second start applies nothing', async (t) => {
  const { sql } = await freshDatabase(t)
  const migrations = bundledMigrations('postgres')
  assert.deepEqual(await migratePostgres(sql, migrations), migrations.map((migration) => migration.version))
  const recorded = await sql`SELECT version, name, checksum FROM schema_migrations ORDER BY version`
  assert.deepEqual(recorded.map((row) => ({ ...row })), migrations.map(({ version, name, sql: text }) => ({ version, name, checksum: checksum(text) })))
  assert.deepEqual(await migratePostgres(sql, migrations), [])
})

test('instances starting together on one database migrate it once (advisory lock)', async (t) => {
  const { url } = await freshDatabase(t)
  const instances = Array.from({ length: 4 }, () => postgres(url, { max: 1, onnotice: () => {} }))
  t.after(() => Promise.all(instances.map((instance) => instance.end())))
  const applied = await Promise.all(instances.map((instance) => migratePostgres(instance, bundledMigrations('postgres'))))
  assert.deepEqual(applied.flat().sort((a, b) => a - b), bundledMigrations('postgres').map((migration) => migration.version))
})

test('an edited migration, a newer database and a failing migration are refused with one clear message, and a failure changes nothing', async (t) => {
  const { sql } = await freshDatabase(t)
  const migrations = bundledMigrations('postgres')
  await migratePostgres(sql, migrations)
  const edited: Migration[] = migrations.map((migration) => (migration.version === 1 ? { ...migration, sql: `${migration.sql}\n-- edited\n` } : migration))
  await assert.rejects(migratePostgres(sql, edited), (error: Error) => error instanceof MigrationError && /001_schema\.sql was changed after it was applied/.test(error.message))
  await assert.rejects(migratePostgres(sql, []), (error: Error) => error instanceof MigrationError && /written by a newer version/.test(error.message))
  const next = migrations.length + 1
  const broken = [...migrations, { version: next, name: 'broken', sql: 'CREATE TABLE half_done (id int); SELECT no_such_function();' }]
  await assert.rejects(migratePostgres(sql, broken), (error: Error) => error instanceof MigrationError && new RegExp(`${String(next).padStart(3, '0')}_broken\\.sql failed`).test(error.message))
  assert.equal((await sql`SELECT to_regclass('half_done') AS t`)[0]!.t, null, 'rolled back whole')
  assert.equal((await sql`SELECT count(*)::int AS n FROM schema_migrations`)[0]!.n, migrations.length)
})

test('the schema keeps SQLite\'s rules: counts and times follow messages, the audit log is append-only, user names are unique in any case', async (t) => {
  const { sql } = await freshDatabase(t)
  await migratePostgres(sql, bundledMigrations('postgres'))
  await sql`INSERT INTO sessions (id, title, created_at, updated_at) VALUES ('s1', 'New Chat', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`
  await sql`INSERT INTO messages (id, session_id, role, content, created_at) VALUES ('m1', 's1', 'user', 'hi', '2026-01-02T00:00:00.000Z'), ('m2', 's1', 'assistant', 'hello', '2026-01-02T00:00:00.000Z')`
  const [session] = await sql`SELECT message_count, updated_at FROM sessions WHERE id = 's1'`
  assert.equal(session!.message_count, 2)
  assert.equal(session!.updated_at.toISOString(), '2026-01-02T00:00:00.000Z')
  const order = await sql`SELECT id FROM messages WHERE session_id = 's1' ORDER BY created_at, seq`
  assert.deepEqual(order.map((row) => row.id), ['m1', 'm2'], 'ties broken by insertion order')
  await sql`DELETE FROM messages WHERE id = 'm1'`
  assert.equal((await sql`SELECT message_count FROM sessions WHERE id = 's1'`)[0]!.message_count, 1)
  await sql`DELETE FROM sessions WHERE id = 's1'`
  assert.equal((await sql`SELECT count(*)::int AS n FROM messages`)[0]!.n, 0, 'messages go with their session')

  await sql`INSERT INTO audit_log (at, action, outcome) VALUES (now(), 'login', 'ok')`
  for (const change of [sql`UPDATE audit_log SET outcome = 'failed'`, sql`DELETE FROM audit_log`, sql`TRUNCATE audit_log`]) {
    await assert.rejects(change, /the audit log is append-only/)
  }
  await sql`INSERT INTO users (id, name, role, created_at) VALUES ('u1', 'Alice', 'user', now())`
  await assert.rejects(sql`INSERT INTO users (id, name, role, created_at) VALUES ('u2', 'alice', 'user', now())`, /duplicate key/)
})

test('conversations stored before branches (migration 005) become one branch each: every message follows the one before it, the last is the active leaf', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await migratePostgres(sql, bundledMigrations('postgres').filter((migration) => migration.version < 5))
  await sql`INSERT INTO sessions (id, title, created_at, updated_at) VALUES ('s1', 'One', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'), ('s2', 'Two', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`
  await sql`INSERT INTO messages (id, session_id, role, content, created_at) VALUES
    ('a', 's1', 'system', 'Be brief.', '2026-01-02T00:00:00.000Z'), ('b', 's1', 'user', 'hi', '2026-01-02T00:00:00.000Z'),
    ('x', 's2', 'user', 'other', '2026-01-02T00:00:01.000Z'),
    ('c', 's1', 'assistant', 'hello', '2026-01-02T00:00:00.000Z'), ('d', 's1', 'user', 'more', '2026-01-03T00:00:00.000Z')`
  const store = new PostgresStore(url, { maxConnections: 2 })
  t.after(() => store.close())
  await store.ready
  const page = await store.chats.listMessages('s1', 10, null)
  assert.deepEqual(page.items.map((message) => [message.id, message.parent_id]), [['a', null], ['b', 'a'], ['c', 'b'], ['d', 'c']])
  assert.equal((await store.chats.getSession('s1', 'local'))!.current_message_id, 'd')
  assert.equal((await store.chats.getSession('s2', 'local'))!.current_message_id, 'x')
  assert.deepEqual((await store.chats.history('s1')).messages.map((message) => message.content), ['Be brief.', 'hi', 'hello', 'more'])
})

test('chats stored before their settings (migration 016) keep the model of their last reply; one without a reply keeps none', async (t) => {
  const { url, sql } = await freshDatabase(t)
  await migratePostgres(sql, bundledMigrations('postgres').filter((migration) => migration.version < 16))
  await sql`INSERT INTO sessions (id, title, created_at, updated_at) VALUES ('s1', 'One', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'), ('s2', 'Two', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')`
  await sql`INSERT INTO messages (id, session_id, role, content, model, created_at) VALUES
    ('a', 's1', 'user', 'hi', NULL, '2026-01-02T00:00:00.000Z'), ('b', 's1', 'assistant', 'hello', 'llama3.2', '2026-01-02T00:00:01.000Z'),
    ('c', 's1', 'user', 'look', NULL, '2026-01-03T00:00:00.000Z'), ('d', 's1', 'assistant', 'a cat', 'gemma3:4b', '2026-01-03T00:00:01.000Z'),
    ('x', 's2', 'user', 'alone', NULL, '2026-01-02T00:00:00.000Z')`
  const store = new PostgresStore(url, { maxConnections: 2 })
  t.after(() => store.close())
  await store.ready
  const kept = (await store.chats.getSession('s1', 'local'))!
  assert.deepEqual([kept.model, kept.options, kept.think], ['gemma3:4b', {}, null])
  assert.equal((await store.chats.getSession('s2', 'local'))!.model, null)
})
