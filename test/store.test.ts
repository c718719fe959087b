import assert from 'node:assert/strict'
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { pathToFileURL } from 'node:url'
import { test } from 'node:test'
import { bundledMigrations, checksum, migrate, MigrationError, readMigrations } from '../lib/store/migrations.ts'
import { SqliteResponseStore } from '../lib/store/sqlite/response-store.ts'
import { LOCAL_USER_ID, titleFromMessage } from '../lib/store/chat-store.ts'
import { SqliteChatStore } from '../lib/store/sqlite/chat-store.ts'

const tempDb = () => join(mkdtempSync(join(tmpdir(), 'chat-ollama-store-')), 'nested', 'chat.db')

test('a new database gets every migration, recorded with its checksum, and the PRAGMAs', (t) => {
  const path = tempDb()
  const store = new SqliteChatStore(path)
  t.after(() => store.close())
  const rows = store.db.prepare('SELECT version, name, checksum FROM schema_migrations ORDER BY version').all().map((row) => ({ ...row }))
  assert.deepEqual(rows, bundledMigrations().map(({ version, name, sql }) => ({ version, name, checksum: checksum(sql) })))
  assert.ok(rows.length >= 3)
  assert.equal(store.db.prepare('PRAGMA journal_mode').get()!.journal_mode, 'wal')
  assert.equal(store.db.prepare('PRAGMA foreign_keys').get()!.foreign_keys, 1)
  assert.equal(store.db.prepare('PRAGMA synchronous').get()!.synchronous, 1)
  assert.ok(Number(store.db.prepare('PRAGMA busy_timeout').get()!.timeout) > 0)
})

test('responses stored before migration 011 are read whole after it (their request moved to a table of its own)', async () => {
  const path = tempDb()
  // The database as version 10 left it (raw: today's store prepares statements for later columns).
  mkdirSync(dirname(path), { recursive: true })
  const before = new DatabaseSync(path)
  migrate(before, bundledMigrations().filter((migration) => migration.version < 11))
  before.prepare(
    `INSERT INTO responses (id, owner_id, model, instructions, status, background, input, output_text, deltas, params, created_at, completed_at)
     VALUES ('resp_old', 'local', 'llama3.2', 'Be terse.', 'completed', 0, ?, 'Paris.', '[6]', ?, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:01.000Z')`,
  ).run(JSON.stringify([{ id: 'msg_1', role: 'user', text: 'Capital of France?' }]), JSON.stringify({ max_output_tokens: null, temperature: null, top_p: null, metadata: {}, text_format: { type: 'text' }, store: true }))
  before.close()
  const after = new SqliteChatStore(path)
  const response = (await new SqliteResponseStore(after.db).get('resp_old', 'local'))!
  assert.deepEqual([response.instructions, response.input, response.output_text, response.tool_calls, response.params.store], ['Be terse.', [{ id: 'msg_1', role: 'user', text: 'Capital of France?' }], 'Paris.', [], true])
  after.close()
})

test('a restart on an existing database keeps its data and applies nothing twice', async () => {
  const path = tempDb()
  const first = new SqliteChatStore(path)
  const session = await first.createSession({ title: 'kept' })
  await first.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: session.id, content: 'hello' })
  first.close()
  const second = new SqliteChatStore(path)
  assert.equal((await second.getSession(session.id, LOCAL_USER_ID))?.title, 'kept')
  assert.equal((await second.getSession(session.id, LOCAL_USER_ID))?.message_count, 1)
  assert.equal(Number(second.db.prepare('SELECT count(*) AS n FROM schema_migrations').get()!.n), bundledMigrations().length)
  second.close()
})

test('a migration edited after it was applied stops start-up with a clear message', () => {
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-migrations-'))
  cpSync(new URL('../migrations/sqlite/', import.meta.url), folder, { recursive: true })
  const url = pathToFileURL(`${folder}/`)
  const path = tempDb()
  new SqliteChatStore(path, { migrations: readMigrations(url) }).close()
  const file = join(folder, '002_session_updated_at_trigger.sql')
  writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited\n`)
  assert.throws(
    () => new SqliteChatStore(path, { migrations: readMigrations(url) }),
    (error: Error) => error instanceof MigrationError && /Migration 002_session_updated_at_trigger\.sql was changed after it was applied/.test(error.message),
  )
})

test('line endings do not count as an edit', () => {
  assert.equal(checksum('a;\r\nb;\r\n'), checksum('a;\nb;\n'))
})

test('a database written by newer code is refused', () => {
  const path = tempDb()
  new SqliteChatStore(path).close()
  const db = new DatabaseSync(path)
  db.prepare("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 'x', '2030-01-01T00:00:00.000Z')").run()
  db.close()
  assert.throws(() => new SqliteChatStore(path), (error: Error) => error instanceof MigrationError && /newer version of chat-ollama/.test(error.message))
})

test('a failing migration is rolled back whole and named', () => {
  const folder = mkdtempSync(join(tmpdir(), 'chat-ollama-migrations-'))
  mkdirSync(folder, { recursive: true })
  writeFileSync(join(folder, '001_ok.sql'), 'CREATE TABLE a (x);')
  writeFileSync(join(folder, '002_broken.sql'), 'CREATE TABLE b (y); THIS IS NOT SQL;')
  const path = tempDb()
  assert.throws(() => new SqliteChatStore(path, { migrations: readMigrations(pathToFileURL(`${folder}/`)) }), /Migration 002_broken\.sql failed/)
  const db = new DatabaseSync(path)
  assert.deepEqual(db.prepare('SELECT version FROM schema_migrations').all().map((row) => row.version), [1])
  assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'b'").get()!.n, 0)
  db.close()
})

test('deleting a session removes its messages', async (t) => {
  const store = new SqliteChatStore(':memory:')
  t.after(() => store.close())
  const session = await store.createSession({ system: 'be brief' })
  await store.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: session.id, content: 'hi' })
  assert.equal((await store.getSession(session.id, LOCAL_USER_ID))?.message_count, 2)
  assert.equal(await store.deleteSession(session.id, LOCAL_USER_ID), 'deleted')
  assert.equal(store.db.prepare('SELECT count(*) AS n FROM messages').get()!.n, 0)
  assert.equal(await store.deleteSession(session.id, LOCAL_USER_ID), 'missing')
})

test('titles come from the first line, cut at a word boundary to 60 characters', () => {
  assert.equal(titleFromMessage('  Why is the sky blue?\nAnd the sea?'), 'Why is the sky blue?')
  const long = 'Explain the difference between processes and threads in operating systems please'
  const title = titleFromMessage(long)
  assert.equal(title, 'Explain the difference between processes and threads in')
  assert.ok(title.length <= 60)
  assert.equal(titleFromMessage('x'.repeat(80)), 'x'.repeat(60))
  assert.equal(titleFromMessage('\n\n'), 'New Chat')
})

test('conversations stored before branches (migration 014) become one branch each: every message follows the one before it, the last is the active leaf', async () => {
  const path = tempDb()
  mkdirSync(dirname(path), { recursive: true })
  const before = new DatabaseSync(path)
  migrate(before, bundledMigrations().filter((migration) => migration.version < 14))
  before.exec(`
    INSERT INTO sessions (id, title, created_at, updated_at) VALUES ('s1', 'One', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'), ('s2', 'Two', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
    INSERT INTO messages (id, session_id, role, content, created_at) VALUES
      ('a', 's1', 'system', 'Be brief.', '2026-01-02T00:00:00.000Z'), ('b', 's1', 'user', 'hi', '2026-01-02T00:00:00.000Z'),
      ('x', 's2', 'user', 'other', '2026-01-02T00:00:01.000Z'),
      ('c', 's1', 'assistant', 'hello', '2026-01-02T00:00:00.000Z'), ('d', 's1', 'user', 'more', '2026-01-03T00:00:00.000Z');
  `)
  before.close()
  const after = new SqliteChatStore(path)
  const page = await after.listMessages('s1', 10, null)
  assert.deepEqual(page.items.map((message) => [message.id, message.parent_id]), [['a', null], ['b', 'a'], ['c', 'b'], ['d', 'c']])
  assert.equal((await after.getSession('s1', LOCAL_USER_ID))!.current_message_id, 'd')
  assert.equal((await after.getSession('s2', LOCAL_USER_ID))!.current_message_id, 'x')
  assert.deepEqual((await after.history('s1')).messages.map((message) => message.content), ['Be brief.', 'hi', 'hello', 'more'])
  await after.close()
})

test('chats stored before their settings (migration 026) keep the model of their last reply; one without a reply keeps none', async () => {
  const path = tempDb()
  mkdirSync(dirname(path), { recursive: true })
  const before = new DatabaseSync(path)
  migrate(before, bundledMigrations().filter((migration) => migration.version < 26))
  before.exec(`
    INSERT INTO sessions (id, title, created_at, updated_at) VALUES ('s1', 'One', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z'), ('s2', 'Two', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
    INSERT INTO messages (id, session_id, role, content, model, created_at) VALUES
      ('a', 's1', 'user', 'hi', NULL, '2026-01-02T00:00:00.000Z'), ('b', 's1', 'assistant', 'hello', 'llama3.2', '2026-01-02T00:00:01.000Z'),
      ('c', 's1', 'user', 'look', NULL, '2026-01-03T00:00:00.000Z'), ('d', 's1', 'assistant', 'a cat', 'gemma3:4b', '2026-01-03T00:00:01.000Z'),
      ('x', 's2', 'user', 'alone', NULL, '2026-01-02T00:00:00.000Z');
  `)
  before.close()
  const after = new SqliteChatStore(path)
  const kept = (await after.getSession('s1', LOCAL_USER_ID))!
  assert.deepEqual([kept.model, kept.options, kept.think], ['gemma3:4b', {}, null])
  assert.equal((await after.getSession('s2', LOCAL_USER_ID))!.model, null)
  await after.close()
})

test('the tool-message rebuild (migration 019) keeps every message, its images, its place in search, and the triggers', async () => {
  const path = tempDb()
  mkdirSync(dirname(path), { recursive: true })
  const before = new DatabaseSync(path)
  before.exec('PRAGMA foreign_keys = ON')
  migrate(before, bundledMigrations().filter((migration) => migration.version < 19))
  before.exec(`
    INSERT INTO sessions (id, title, created_at, updated_at, message_count, current_message_id) VALUES ('s1', 'One', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 0, NULL);
    INSERT INTO messages (id, session_id, role, content, created_at, parent_id) VALUES ('a', 's1', 'user', 'photosynthesis please', '2026-01-02T00:00:00.000Z', NULL);
    INSERT INTO messages (id, session_id, role, content, created_at, parent_id, status, event_count) VALUES ('b', 's1', 'assistant', 'chlorophyll answer', '2026-01-02T00:00:01.000Z', 'a', 'complete', 7);
    INSERT INTO attachments (id, message_id, position, media_type, width, height, size, data, created_at) VALUES ('img', 'a', 0, 'image/png', 1, 1, 3, x'010203', '2026-01-02T00:00:00.000Z');
  `)
  const rowidsBefore = before.prepare('SELECT id, rowid FROM messages ORDER BY id').all().map((row) => ({ ...row }))
  before.close()

  const after = new SqliteChatStore(path)
  assert.deepEqual(after.db.prepare('SELECT id, rowid FROM messages ORDER BY id').all().map((row) => ({ ...row })), rowidsBefore)
  assert.equal(after.db.prepare('PRAGMA foreign_keys').get()!.foreign_keys, 1)
  assert.deepEqual([...(await after.imagesOf(['a'])).get('a')!.map((image) => image.id)], ['img'])
  assert.deepEqual((await after.search(LOCAL_USER_ID, ['chlorophyll'], 10, 0)).map((hit) => hit.messageId), ['b'])
  assert.equal((await after.getReply('b'))!.event_count, 7)
  // The triggers came back: a new message counts, becomes the leaf and is searchable; a delete cascades to images.
  await after.addUserMessage({ ownerId: LOCAL_USER_ID, sessionId: 's1', content: 'xylem question' })
  const session = (await after.getSession('s1', LOCAL_USER_ID))!
  assert.equal(session.message_count, 3)
  assert.deepEqual((await after.search(LOCAL_USER_ID, ['xylem'], 10, 0)).map((hit) => hit.messageId), [session.current_message_id])
  assert.equal(await after.deleteMessage('s1', 'a'), true)
  assert.equal(Number(after.db.prepare('SELECT count(*) AS n FROM attachments').get()!.n), 0)
  assert.equal((await after.getMessage('b'))!.parent_id, null)
  // The roles and status a turn with tools stores are accepted now.
  after.db.prepare(`INSERT INTO messages (id, session_id, role, content, created_at, status, tool_call_id, tool_name) VALUES ('t', 's1', 'tool', '42', '2026-01-03T00:00:00.000Z', 'awaiting_approval', 'call_1', 'calc__add')`).run()
  await after.close()
})
