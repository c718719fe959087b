import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import adminAudit from '../functions/admin-audit.ts'
import adminKeysCreate from '../functions/admin-keys-create.ts'
import adminKeysList from '../functions/admin-keys-list.ts'
import adminKeysRevoke from '../functions/admin-keys-revoke.ts'
import adminUserSessions from '../functions/admin-user-sessions.ts'
import adminUsersCreate from '../functions/admin-users-create.ts'
import adminUsersList from '../functions/admin-users-list.ts'
import attachmentGet from '../functions/attachment-get.ts'
import authLogin from '../functions/auth-login.ts'
import toolsList from '../functions/tools-list.ts'
import adminMcpSignIn from '../functions/admin-mcp-sign-in.ts'
import adminMcpSignOut from '../functions/admin-mcp-sign-out.ts'
import mcpOAuthCallback from '../functions/mcp-oauth-callback.ts'
import toolCallAnswer from '../functions/tool-call-answer.ts'
import toolInputAnswer from '../functions/tool-input-answer.ts'
import authLogout from '../functions/auth-logout.ts'
import authMe from '../functions/auth-me.ts'
import chat from '../functions/chat.ts'
import foldersList from '../functions/folders-list.ts'
import health from '../functions/health.ts'
import shareCreate from '../functions/share-create.ts'
import shareDelete from '../functions/share-delete.ts'
import sharedChat from '../functions/shared-chat.ts'
import sharesList from '../functions/shares-list.ts'
import promptDelete from '../functions/prompt-delete.ts'
import promptUpdate from '../functions/prompt-update.ts'
import promptsCreate from '../functions/prompts-create.ts'
import promptsList from '../functions/prompts-list.ts'
import messageUpdate from '../functions/message-update.ts'
import metrics from '../functions/metrics.ts'
import models from '../functions/models.ts'
import modelsGet from '../functions/models-get.ts'
import openaiChatCompletions from '../functions/openai-chat-completions.ts'
import openaiEmbeddings from '../functions/openai-embeddings.ts'
import vectorStoresCreate from '../functions/vector-stores-create.ts'
import vectorStoresList from '../functions/vector-stores-list.ts'
import vectorStoreGet from '../functions/vector-store-get.ts'
import vectorStoreDelete from '../functions/vector-store-delete.ts'
import vectorStoreFilesCreate from '../functions/vector-store-files-create.ts'
import vectorStoreFilesList from '../functions/vector-store-files-list.ts'
import vectorStoreFileGet from '../functions/vector-store-file-get.ts'
import vectorStoreFileDelete from '../functions/vector-store-file-delete.ts'
import vectorStoreSearch from '../functions/vector-store-search.ts'
import filesCreate from '../functions/files-create.ts'
import filesList from '../functions/files-list.ts'
import filesGet from '../functions/files-get.ts'
import filesContent from '../functions/files-content.ts'
import filesDelete from '../functions/files-delete.ts'
import collectionsCreate from '../functions/collections-create.ts'
import collectionsList from '../functions/collections-list.ts'
import collectionGet from '../functions/collection-get.ts'
import collectionUpdate from '../functions/collection-update.ts'
import collectionDelete from '../functions/collection-delete.ts'
import collectionFilesAdd from '../functions/collection-files-add.ts'
import collectionFilesRemove from '../functions/collection-files-remove.ts'
import collectionSearch from '../functions/collection-search.ts'
import openaiConversationsCreate from '../functions/openai-conversations-create.ts'
import openaiConversationsGet from '../functions/openai-conversations-get.ts'
import openaiConversationsUpdate from '../functions/openai-conversations-update.ts'
import openaiConversationsDelete from '../functions/openai-conversations-delete.ts'
import openaiConversationItemsList from '../functions/openai-conversation-items-list.ts'
import openaiConversationItemsCreate from '../functions/openai-conversation-items-create.ts'
import openaiConversationItemsGet from '../functions/openai-conversation-items-get.ts'
import openaiConversationItemsDelete from '../functions/openai-conversation-items-delete.ts'
import openaiResponsesCancel from '../functions/openai-responses-cancel.ts'
import openaiResponsesCreate from '../functions/openai-responses-create.ts'
import openaiResponsesDelete from '../functions/openai-responses-delete.ts'
import openaiResponsesGet from '../functions/openai-responses-get.ts'
import openaiResponsesInputItems from '../functions/openai-responses-input-items.ts'
import sessionCancel from '../functions/session-cancel.ts'
import sessionExport from '../functions/session-export.ts'
import exportAll from '../functions/export.ts'
import importFile from '../functions/import.ts'
import sessionCurrent from '../functions/session-current.ts'
import sessionRegenerate from '../functions/session-regenerate.ts'
import sessionDelete from '../functions/session-delete.ts'
import sessionGet from '../functions/session-get.ts'
import sessionMessages from '../functions/session-messages.ts'
import sessionStream from '../functions/session-stream.ts'
import sessionUpdate from '../functions/session-update.ts'
import sessionsCreate from '../functions/sessions-create.ts'
import sessionsList from '../functions/sessions-list.ts'
import search from '../functions/search.ts'
import web from '../functions/web.ts'
import { ConfigError, loadConfig, ollamaHostsOf, readEnvironment, type Config } from './shared/config.ts'
import { VERSION, type AppContext, type AppParts } from './context.ts'
import { createAppContext, joinDatabase, openStore, startTracing } from './app.ts'
import { createDispatcher } from './http/dispatcher.ts'
import { extractFile } from './documents/extract.ts'
import type { FunctionSpec } from './http/function-spec.ts'
import { http } from './shared/node-http-module.ts'
import { answerUnparsed, serveNodeRequest } from './http/node-http.ts'
import { maskCredentials } from './shared/ollama-host.ts'

/** Every function the server mounts, each at its own method and path. */
export const FUNCTIONS: FunctionSpec[] = [
  foldersList,
  health,
  shareCreate,
  sharesList,
  shareDelete,
  sharedChat,
  promptsList,
  promptsCreate,
  promptUpdate,
  promptDelete,
  messageUpdate,
  chat,
  models,
  modelsGet,
  sessionsList,
  sessionsCreate,
  search,
  sessionGet,
  sessionUpdate,
  sessionDelete,
  sessionMessages,
  sessionStream,
  sessionCancel,
  sessionRegenerate,
  sessionCurrent,
  sessionExport,
  exportAll,
  importFile,
  attachmentGet,
  toolsList,
  toolCallAnswer,
  toolInputAnswer,
  authLogin,
  authLogout,
  authMe,
  adminUsersList,
  adminUsersCreate,
  adminKeysList,
  adminKeysCreate,
  adminKeysRevoke,
  adminUserSessions,
  adminAudit,
  adminMcpSignIn,
  adminMcpSignOut,
  mcpOAuthCallback,
  metrics,
  openaiChatCompletions,
  openaiEmbeddings,
  vectorStoresCreate,
  vectorStoresList,
  vectorStoreGet,
  vectorStoreDelete,
  vectorStoreFilesCreate,
  vectorStoreFilesList,
  vectorStoreFileGet,
  vectorStoreFileDelete,
  vectorStoreSearch,
  filesCreate,
  filesList,
  filesGet,
  filesContent,
  filesDelete,
  collectionsCreate,
  collectionsList,
  collectionGet,
  collectionUpdate,
  collectionDelete,
  collectionFilesAdd,
  collectionFilesRemove,
  collectionSearch,
  openaiResponsesCreate,
  openaiResponsesGet,
  openaiResponsesCancel,
  openaiResponsesDelete,
  openaiResponsesInputItems,
  openaiConversationsCreate,
  openaiConversationsGet,
  openaiConversationsUpdate,
  openaiConversationsDelete,
  openaiConversationItemsList,
  openaiConversationItemsCreate,
  openaiConversationItemsGet,
  openaiConversationItemsDelete,
  web,
]

export interface RunningServer {
  server: Server
  app: AppContext
  url: string
  /** Stops accepting, lets generations finish for up to SHUTDOWN_GRACE, closes the database. */
  shutdown(): Promise<void>
}

/** Opens the store, takes it for this server alone, recovers what a crash left, and listens. */
export async function startServer(config: Config, parts: AppParts = {}): Promise<RunningServer> {
  const app = createAppContext(config, { ...parts, database: parts.database ?? (await openStore(config)) })
  await startTracing(app)
  let lock: { release(): Promise<void> }
  try {
    // Before recovery: SQLite's lock makes this the one server, so every `streaming` reply is a
    // previous run's; on PostgreSQL only this instance id's are (the others' run on).
    lock = await joinDatabase(app)
  } catch (error) {
    await app.database.close()
    throw error
  }
  const interrupted = await app.store.interruptStreamingReplies()
  if (interrupted > 0) app.log.warn('replies left streaming by a previous run are now interrupted', { count: interrupted })
  const unfinishedImports = await app.store.dropUnfinishedImports()
  if (unfinishedImports > 0) app.log.warn('conversations a previous run was importing are removed (their import did not finish)', { count: unfinishedImports })
  const failedResponses = await app.responses.store.interruptRunning()
  if (failedResponses > 0) app.log.warn('responses left running by a previous run are now failed', { count: failedResponses })
  // Tool calls that waited for approval through the stop: the overdue ones denied, answered replies resumed.
  await app.approvals.sweep()
  // A server runs for long: run_python's interpreters start now rather than at the first call.
  app.tools.builtin?.prepare(['run_python'])
  // Files a previous run was reading are taken up again at once, and ingestion looks for work.
  await app.database.documents.releaseClaims(config.instanceId)
  app.ingestion.wake(extractFile)

  const dispatcher = createDispatcher(FUNCTIONS, app)
  const responses = new OpenResponses()
  // Routes that take larger bodies (POST /v1/import) say so; every other one stops at MAX_BODY_BYTES.
  const bodyLimits = new Map(FUNCTIONS.filter((fn) => fn.maxBodyBytes).map((fn) => [`${fn.method} ${fn.path}`, fn.maxBodyBytes!(config)]))
  const maxBodyBytes = (method: string, path: string) => bodyLimits.get(`${method} ${path}`) ?? config.maxBodyBytes
  const adapterOptions = { maxBodyBytes, writeTimeoutMs: config.writeTimeoutMs, log: app.log, refused: dispatcher.refused }
  const server = http.createServer(
    {
      requestTimeout: config.readTimeoutMs,
      headersTimeout: Math.min(config.readTimeoutMs, 60_000),
      // Node checks those timeouts on this period (30 s by default), which would let READ_TIMEOUT run late.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.readTimeoutMs / 4))),
      keepAliveTimeout: 5_000,
      noDelay: true,
    },
    (req, res) => {
      responses.open++
      res.once('close', responses.closed)
      void serveNodeRequest(req, res, dispatcher.fetch, adapterOptions)
    },
  )
  server.on('connect', (_req, socket) => answerUnparsed(socket, undefined, adapterOptions))
  server.on('clientError', (error, socket) => answerUnparsed(socket, error, adapterOptions))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { address, port } = server.address() as AddressInfo
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`

  let stopping: Promise<void> | undefined
  const shutdown = () =>
    (stopping ??= (async () => {
      app.log.info('shutting down', { running_generations: app.generations.size, grace_ms: config.shutdownGraceMs })
      const closed = new Promise((resolve) => server.close(resolve))
      server.closeIdleConnections()
      // Followers of other instances' replies would hold the shutdown until those end: they reconnect elsewhere.
      app.database.cluster?.closeFollowers()
      // Waiting replies stay stored as they are: the next start (or another instance) resumes them.
      app.approvals.close()
      await app.ingestion.close()
      await app.generations.drain(config.shutdownGraceMs)
      // Every reply is stored; let the responses that tell clients so finish before connections go.
      await responses.allClosed(config.writeTimeoutMs)
      server.closeAllConnections()
      await closed
      app.ollama.stop()
      // stdio MCP servers are our children: they stop with us.
      await app.tools.close()
      await lock.release()
      await app.database.close()
      // The spans of the last requests go out before the process does (bounded by the exporter's timeout).
      await app.tracer.shutdown().catch((error: unknown) => app.log.warn('trace export at shutdown failed', { error: (error as Error).message }))
      app.log.info('stopped')
    })())
  return { server, app, url, shutdown }
}

/** Counts the responses being served, so shutdown can wait for the last of them. */
class OpenResponses {
  open = 0
  private idle: (() => void) | undefined

  readonly closed = (): void => {
    if (--this.open === 0) this.idle?.()
  }

  /** Resolves when no response is open, or after `timeoutMs` (a client that stopped reading). */
  allClosed(timeoutMs: number): Promise<void> {
    if (this.open === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      this.idle = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }
}

async function main(): Promise<void> {
  const startedAt = performance.now()
  let config: Config
  try {
    config = loadConfig(readEnvironment())
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    process.stderr.write(`chat-ollama: ${error.message}\n`)
    process.exit(1)
  }
  let running: RunningServer
  try {
    running = await startServer(config)
  } catch (error) {
    process.stderr.write(`chat-ollama: could not start: ${(error as Error).message}\n`)
    process.exit(1)
  }
  const stop = (reason: string) => {
    running.app.log.info('stopping', { reason })
    running.shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        running.app.log.error('shutdown failed', { error })
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
  // Logged once the signal handlers are in place: a supervisor that saw this line may stop us cleanly.
  running.app.log.info('listening', {
    url: running.url,
    version: VERSION,
    node: process.version,
    // Which store is in use (DATABASE_URL wins over DB_PATH), its password masked.
    store: running.app.database.kind,
    ...(config.databaseUrl ? { database_url: maskCredentials(config.databaseUrl) } : { db_path: config.dbPath }),
    ollama_hosts: ollamaHostsOf(config).map(maskCredentials),
    startup_ms: Math.round(performance.now() - startedAt),
  })
}

if (import.meta.main) await main()
