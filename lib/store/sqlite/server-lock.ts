import { randomUUID } from 'node:crypto'
import { closeSync, openSync } from 'node:fs'
import { hostname } from 'node:os'
import { DatabaseSync } from 'node:sqlite'
import type { Logger } from '../../observability/log.ts'
import type { SqliteDatabase } from './database.ts'

export class ServerLockError extends Error {
  override name = 'ServerLockError'
}

export interface ServerLock {
  release(): void
}

/** How long a starting server waits for the lock before it refuses to start. */
const LOCK_WAIT_MS = 1000

/** SQLITE_BUSY: another connection holds the lock. */
const SQLITE_BUSY = 5

/**
 * Makes this server the one server on its database, or throws a ServerLockError whose message is
 * one line. The lock is SQLite's own exclusive lock on `<database>.lock`, held by a connection of
 * its own for as long as the server runs: the kernel drops it the moment the process dies (kill
 * -9, OOM, a zombie nobody reaps), so no liveness guess is needed and a restart is never refused
 * by a dead server. The `server_lock` row only says who holds it, for the refusal's message.
 */
export function acquireServerLock(store: SqliteDatabase, log: Logger): ServerLock {
  const lockPath = `${store.path}.lock`
  closeSync(openSync(lockPath, 'a', 0o600))
  // A holder killed a moment ago may still be exiting (its threads close its files last): wait a little.
  const lockDb = new DatabaseSync(lockPath, { timeout: LOCK_WAIT_MS })
  try {
    lockDb.exec('PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE')
  } catch (error) {
    lockDb.close()
    if ((Number((error as { errcode?: unknown }).errcode) & 0xff) !== SQLITE_BUSY) throw error
    const holder = store.serverLockHolder()
    const who = holder ? `pid ${holder.pid} on ${holder.hostname}, since ${holder.acquired_at}` : 'starting up'
    throw new ServerLockError(`the database ${store.path} is in use by another chat-ollama server (${who}); run one server per database`)
  }
  const me = { holder: randomUUID(), hostname: hostname(), pid: process.pid }
  const left = store.recordServerLock(me)
  // Only a server that stopped without releasing leaves its row: the lock itself was free.
  if (left) log.warn('took over the database from a server that is gone', { pid: left.pid, host: left.hostname, acquired_at: left.acquired_at })
  return {
    release() {
      if (!lockDb.isOpen) return
      store.releaseServerLock(me.holder)
      lockDb.close()
    },
  }
}
