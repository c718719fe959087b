/**
 * A throwaway PostgreSQL cluster for tests: Debian's `initdb` and `pg_ctl` (run as the
 * `postgres` user when the tests run as root, as CI does), on a free loopback port, its socket
 * in a temporary folder, fsync off, its files in memory (/dev/shm) where the machine has it. One
 * cluster per test process, stopped and removed when the process exits; each test gets a database
 * of its own. When PostgreSQL is missing the tests fail, naming what to install: they never skip.
 */
import { execFileSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'

export interface PostgresCluster {
  /** A URL for the cluster's `postgres` database (for creating others). */
  adminUrl: string
  /** A new, empty database; its URL. */
  newDatabase(): Promise<string>
  /** Stops the server (every connection is closed), as an outage would. */
  stop(): void
  /** Starts it again after stop(), on the same port. */
  start(): void
}

/** The folder of PostgreSQL's server programs: PG_BIN, else Debian's newest /usr/lib/postgresql/N/bin. */
function serverBinaries(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN
  const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a)) : []
  const folder = versions.map((version) => `/usr/lib/postgresql/${version}/bin`).find((bin) => existsSync(join(bin, 'initdb')))
  if (!folder) throw new Error('PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/initdb): install Debian\'s postgresql package (.ci/run does), or set PG_BIN')
  return folder
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

let started: Promise<PostgresCluster> | undefined

/** The process's cluster, started on first use. */
export function postgresCluster(): Promise<PostgresCluster> {
  started ??= startCluster()
  return started
}

const FOLDER_PREFIX = 'chat-ollama-pg-'

/** statfs's type of a tmpfs. */
const TMPFS_MAGIC = 0x01021994

/**
 * Where the clusters live: a database per test writes gigabytes in a run (each CREATE DATABASE
 * copies the template through the WAL), which on a disk made PostgreSQL miss the health check's
 * deadline once two test files ran at once. A tmpfs takes that without a wait.
 */
function clusterRoot(): string {
  try {
    accessSync('/dev/shm', constants.W_OK)
    return statfsSync('/dev/shm').type === TMPFS_MAGIC ? '/dev/shm' : tmpdir()
  } catch {
    return tmpdir()
  }
}
const CLUSTER_ROOT = clusterRoot()

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The clusters of test processes that were killed before they could stop theirs (SIGKILL, a
 * timeout): stopped and removed, or they fill the disk run after run.
 */
function sweepAbandoned(run: (program: string, args: string[]) => unknown): void {
  for (const name of readdirSync(CLUSTER_ROOT).filter((entry) => entry.startsWith(FOLDER_PREFIX))) {
    const folder = join(CLUSTER_ROOT, name)
    let owner = 0
    try {
      owner = Number(readFileSync(join(folder, 'owner'), 'utf8'))
    } catch {
      // No owner written: abandoned, unless it is being made this very moment (or another test
      // process, running at the same time, has just removed it).
      try {
        if (Date.now() - statSync(folder).mtimeMs < 60_000) continue
      } catch {
        continue
      }
    }
    if (owner && isAlive(owner)) continue
    try {
      run('pg_ctl', ['-D', join(folder, 'data'), '-m', 'immediate', 'stop'])
    } catch {}
    rmSync(folder, { recursive: true, force: true })
  }
}

async function startCluster(): Promise<PostgresCluster> {
  const bin = serverBinaries()
  // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
  const asRoot = process.getuid?.() === 0
  const run = (program: string, args: string[]) =>
    execFileSync(asRoot ? 'runuser' : join(bin, program), asRoot ? ['-u', 'postgres', '--', join(bin, program), ...args] : args, { stdio: 'pipe' })
  sweepAbandoned(run)
  const folder = mkdtempSync(join(CLUSTER_ROOT, FOLDER_PREFIX))
  writeFileSync(join(folder, 'owner'), String(process.pid))
  const data = join(folder, 'data')
  if (asRoot) execFileSync('chown', ['postgres:postgres', folder])
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'])
  const port = await freePort()
  const options = `-p ${port} -k ${folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`
  const start = () => run('pg_ctl', ['-D', data, '-l', join(folder, 'log'), '-o', options, '-w', 'start'])
  start()
  process.once('exit', () => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
    } catch {}
    rmSync(folder, { recursive: true, force: true })
  })
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`
  let count = 0
  return {
    adminUrl,
    stop: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    start,
    async newDatabase() {
      const name = `test_${process.pid}_${++count}`
      const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
      try {
        await admin.unsafe(`CREATE DATABASE ${name}`)
      } finally {
        await admin.end()
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`
    },
  }
}
