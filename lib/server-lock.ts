import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from './log.ts'
import type { ChatStore, ServerLockHolder } from './store.ts'

export interface ServerLockTimings {
  /** How often the holder renews the lock. */
  renewMs: number
  /** A lock not renewed for this long is taken over. */
  staleMs: number
}

export const DEFAULT_LOCK_TIMINGS: ServerLockTimings = { renewMs: 5_000, staleMs: 20_000 }

export class ServerLockError extends Error {
  override name = 'ServerLockError'
}

export interface ServerLock {
  /** Resolves if another server took the lock over (this one stalled past `staleMs`). */
  readonly lost: Promise<void>
  release(): void
}

/** Lock holders of this process, so two servers started in one process see each other. */
const heldHere = new Set<string>()

/**
 * Makes this server the one server on its database, or throws a ServerLockError whose message is
 * one line. A lock whose holder is gone is taken over at once: not renewed for `staleMs`, or left
 * by a process on this host that no longer runs (or by an earlier run of this container, whose
 * process had the same pid).
 */
export function acquireServerLock(store: ChatStore, log: Logger, timings: ServerLockTimings = DEFAULT_LOCK_TIMINGS): ServerLock {
  const me = { holder: randomUUID(), hostname: hostname(), pid: process.pid }
  const claim = store.claimServerLock(me, (current) => isStale(current, timings.staleMs))
  if (!claim.acquired) {
    const { pid, hostname: host, renewed_at: renewedAt } = claim.heldBy
    const ago = ((Date.now() - Date.parse(renewedAt)) / 1000).toFixed(1)
    throw new ServerLockError(
      `the database ${store.path} is in use by another chat-ollama server (pid ${pid} on ${host}, seen ${ago}s ago); run one server per database`,
    )
  }
  if (claim.tookOverFrom) {
    const { pid, hostname: host, renewed_at: renewedAt } = claim.tookOverFrom
    log.warn('took over the database from a server that is gone', { pid, host, renewed_at: renewedAt })
  }
  heldHere.add(me.holder)
  const lost = Promise.withResolvers<void>()
  const timer = setInterval(() => {
    try {
      if (store.renewServerLock(me.holder)) return
    } catch (error) {
      // A busy or briefly unavailable database: the next renewal tries again, well within staleMs.
      log.warn('could not renew the database lock', { error })
      return
    }
    clearInterval(timer)
    heldHere.delete(me.holder)
    log.error('another server took over this database; stopping', { db_path: store.path })
    lost.resolve()
  }, timings.renewMs)
  timer.unref()
  return {
    lost: lost.promise,
    release() {
      clearInterval(timer)
      if (!heldHere.delete(me.holder)) return
      store.releaseServerLock(me.holder)
    },
  }
}

function isStale(current: ServerLockHolder, staleMs: number): boolean {
  if (Date.now() - Date.parse(current.renewed_at) > staleMs) return true
  if (current.hostname !== hostname()) return false
  if (current.pid === process.pid) return !heldHere.has(current.holder)
  return !isRunning(current.pid)
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
