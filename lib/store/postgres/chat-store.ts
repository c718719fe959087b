import { randomUUID } from 'node:crypto'
import type { Sql, TransactionSql } from 'postgres'
import { timestamp } from '../../shared/clock.ts'
import { HttpProblem, noSuchSession } from '../../shared/problem.ts'
import { DEFAULT_TITLE, LOCAL_USER_ID, titleFromMessage, type ConversationMessage, type FinishedReply, type History, type ContextCut, toContextCut, toSearchHit, SEARCH_TEXT_CHARS, type SearchHit, type Message, type MessageCursor, type MessageStatus, type ToolStep, type ToolCall, type ApprovalAnswer, type ClaimedReply, type PendingApproval, type PausedReply, decisionOf, toolFieldsOf, toolHistoryOf, toolStepTimes, type NewSession, type Page, type Role, type Session, type SessionCursor, type SessionDeletion, type SessionOrder, type UserTurn, type Branch, cutOnPath, type IdempotencyClaim, type ImportedConversation, type ImportedMessage, importingOwner, type StoredReply, type HistoryEntry, type ImageInfo, type NewImage, type StoredImage, toImage, type IdempotentOutcome, type IdempotentRequest, toIdempotentOutcome } from '../chat-store.ts'
import type { ChatStore } from '../store.ts'
import { PostgresPart } from './part.ts'

/** Times as the API writes them: RFC 3339 UTC with milliseconds (timestamptz comes back as a Date). */
export const iso = (value: Date | string | null): string | null => (value === null ? null : value instanceof Date ? value.toISOString() : new Date(value).toISOString())

type Row = Record<string, any>

/**
 * Sessions and messages on PostgreSQL. Each method is one statement or one transaction
 * (`sql.begin`); `ready` is the migration, awaited before the first query.
 */
export class PostgresChatStore extends PostgresPart implements ChatStore {

  async ping(): Promise<void> {
    await (await this.db())`SELECT 1`
  }

  async claimIdempotencyKey({ ownerId, key, fingerprint, expiredBefore, staleBefore }: IdempotentRequest): Promise<IdempotencyClaim> {
    return (await this.db()).begin(async (tx): Promise<IdempotencyClaim> => {
      // Expired keys, and this key's claim when its request died before recording anything.
      await tx`
        DELETE FROM idempotency_keys WHERE created_at < ${expiredBefore}
          OR (owner_id = ${ownerId} AND key = ${key} AND message_id IS NULL AND status IS NULL AND created_at < ${staleBefore})`
      // A claim made at the same moment elsewhere is waited for, then seen below.
      const [claimed] = await tx`
        INSERT INTO idempotency_keys (owner_id, key, fingerprint, created_at) VALUES (${ownerId}, ${key}, ${fingerprint}, ${timestamp()})
        ON CONFLICT DO NOTHING RETURNING 1`
      if (claimed) return { state: 'new' }
      const [row] = await tx`SELECT * FROM idempotency_keys WHERE owner_id = ${ownerId} AND key = ${key}`
      if (row!.fingerprint !== fingerprint) return { state: 'mismatch' }
      const outcome = toIdempotentOutcome(row!)
      return outcome ? { state: 'done', outcome } : { state: 'running' }
    })
  }

  async recordIdempotentOutcome(ownerId: string, key: string, outcome: IdempotentOutcome): Promise<void> {
    const { sessionId = null, messageId = null, status = null, answer = null } = outcome
    await (await this.db())`
      UPDATE idempotency_keys SET session_id = coalesce(${sessionId}, session_id), message_id = coalesce(${messageId}, message_id),
        status = coalesce(${status}::integer, status), answer = coalesce(${answer}, answer)
      WHERE owner_id = ${ownerId} AND key = ${key}`
  }

  async releaseIdempotencyKey(ownerId: string, key: string): Promise<void> {
    await (await this.db())`DELETE FROM idempotency_keys WHERE owner_id = ${ownerId} AND key = ${key}`
  }

  async beginImport(ownerId: string, conversation: ImportedConversation): Promise<string | 'duplicate'> {
    const sql = await this.db()
    if (await this.isImported(sql, ownerId, conversation)) return 'duplicate'
    const sessionId = randomUUID()
    await sql`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${sessionId}, ${conversation.title}, ${conversation.createdAt}, ${conversation.createdAt}, ${importingOwner(this.instanceId)})`
    return sessionId
  }

  async addImportedMessages(sessionId: string, messages: ImportedMessage[]): Promise<void> {
    await (await this.db()).begin(async (tx) => {
      await Promise.all(messages.map((message) => insertMessage(tx, { ...message, sessionId })))
    })
  }

  async finishImport(ownerId: string, sessionId: string, conversation: ImportedConversation, currentId: string | null): Promise<'imported' | 'duplicate'> {
    const duplicate = async () => {
      await this.discardImport(sessionId)
      return 'duplicate' as const
    }
    try {
      return await (await this.db()).begin(async (tx) => {
        if (await this.isImported(tx, ownerId, conversation)) return 'duplicate' as const
        await tx`UPDATE sessions SET owner_id = ${ownerId}, current_message_id = ${currentId}, updated_at = ${conversation.updatedAt} WHERE id = ${sessionId}`
        // The same file imported at the same moment by another request: one of them gets the row.
        await tx`INSERT INTO import_sources (owner_id, source_id, session_id) VALUES (${ownerId}, ${conversation.sourceId}, ${sessionId})`
        return 'imported' as const
      }).then((outcome) => (outcome === 'duplicate' ? duplicate() : outcome))
    } catch (error) {
      if ((error as { constraint_name?: string }).constraint_name === 'import_sources_pkey') return duplicate()
      throw error
    }
  }

  async discardImport(sessionId: string): Promise<void> {
    await (await this.db())`DELETE FROM sessions WHERE id = ${sessionId} AND owner_id = ${importingOwner(this.instanceId)}`
  }

  async dropUnfinishedImports(): Promise<number> {
    return (await (await this.db())`DELETE FROM sessions WHERE owner_id = ${importingOwner(this.instanceId)}`).count
  }

  private async isImported(sql: Sql | TransactionSql, ownerId: string, conversation: ImportedConversation): Promise<boolean> {
    const [known] = await sql`
      SELECT 1 FROM import_sources WHERE owner_id = ${ownerId} AND source_id = ${conversation.sourceId}
      UNION ALL SELECT 1 FROM sessions WHERE id = ${conversation.sameAsSession} AND owner_id = ${ownerId}`
    return known !== undefined
  }

  async getSession(id: string, ownerId: string): Promise<Session | undefined> {
    const [row] = await (await this.db())`SELECT id, title, created_at, updated_at, message_count, current_message_id FROM sessions WHERE id = ${id} AND owner_id = ${ownerId}`
    return row && toSession(row)
  }

  async createSession({ id = randomUUID(), title = DEFAULT_TITLE, system, ownerId = LOCAL_USER_ID }: NewSession = {}): Promise<Session> {
    return (await this.db()).begin(async (tx) => {
      const now = timestamp()
      await tx`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${id}, ${title}, ${now}, ${now}, ${ownerId})`
      if (system) await insertMessage(tx, { id: randomUUID(), sessionId: id, role: 'system', content: system, model: null, status: 'complete', createdAt: now })
      const [row] = await tx`SELECT id, title, created_at, updated_at, message_count, current_message_id FROM sessions WHERE id = ${id}`
      return toSession(row!)
    })
  }

  async renameSession(id: string, ownerId: string, title: string): Promise<Session | undefined> {
    const [row] = await (await this.db())`
      UPDATE sessions SET title = ${title}, updated_at = ${timestamp()} WHERE id = ${id} AND owner_id = ${ownerId}
      RETURNING id, title, created_at, updated_at, message_count, current_message_id`
    return row && toSession(row)
  }

  async deleteSession(id: string, ownerId: string): Promise<SessionDeletion> {
    return (await this.db()).begin(async (tx): Promise<SessionDeletion> => {
      // The session's row locked first, as a turn locks it: a reply that began on any instance is seen.
      const [session] = await tx`SELECT 1 FROM sessions WHERE id = ${id} AND owner_id = ${ownerId} FOR UPDATE`
      if (!session) return 'missing'
      const [streaming] = await tx`SELECT 1 FROM messages WHERE session_id = ${id} AND status = 'streaming'`
      if (streaming) return 'busy'
      await tx`DELETE FROM sessions WHERE id = ${id}`
      return 'deleted'
    })
  }

  async sessionOwner(id: string): Promise<string | undefined> {
    const [row] = await (await this.db())`SELECT owner_id FROM sessions WHERE id = ${id}`
    return row?.owner_id
  }

  async sessionHost(id: string): Promise<string | null> {
    const [row] = await (await this.db())`
      SELECT ollama_host FROM messages WHERE session_id = ${id} AND role = 'assistant' AND status <> 'streaming'
      ORDER BY created_at DESC, seq DESC LIMIT 1`
    return row?.ollama_host ?? null
  }

  async listSessions(ownerId: string, limit: number, after: SessionCursor | null, order: SessionOrder = 'updated'): Promise<Page<Session, SessionCursor>> {
    const sql = await this.db()
    const columns = sql`id, title, created_at, updated_at, message_count, current_message_id`
    const rows = order === 'created'
      ? after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} AND (created_at, id) > (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at, id LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ORDER BY created_at, id LIMIT ${limit + 1}`
      : after
        ? await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} AND (updated_at, id) < (${after[0]}::timestamptz, ${after[1]}) ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM sessions WHERE owner_id = ${ownerId} ORDER BY updated_at DESC, id DESC LIMIT ${limit + 1}`
    const items = rows.slice(0, limit).map(toSession)
    const last = items.at(-1)
    const sortKey = order === 'created' ? last?.created_at : last?.updated_at
    return { items, next: rows.length > limit && last ? [sortKey!, last.id] : null }
  }

  async listMessages(sessionId: string, limit: number, after: MessageCursor | null, order: 'asc' | 'desc' = 'asc', branch: Branch = 'active'): Promise<Page<Message, MessageCursor>> {
    const sql = await this.db()
    const columns = sql`seq, id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name`
    // The active path is a CTE of the same shape as the table, read in its place.
    const messages = branch === 'active'
      ? sql`(WITH RECURSIVE ${pathTo(sql, sessionId)} SELECT m.* FROM path JOIN messages m ON m.id = path.id) AS messages`
      : sql`messages`
    const rows = order === 'asc'
      ? after
        ? await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} AND (created_at, seq) > (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at, seq LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} ORDER BY created_at, seq LIMIT ${limit + 1}`
      : after
        ? await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} AND (created_at, seq) < (${after[0]}::timestamptz, ${after[1]}) ORDER BY created_at DESC, seq DESC LIMIT ${limit + 1}`
        : await sql`SELECT ${columns} FROM ${messages} WHERE session_id = ${sessionId} ORDER BY created_at DESC, seq DESC LIMIT ${limit + 1}`
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    const items = page.map(toMessage)
    const images = await this.imagesOf(items.map((message) => message.id))
    for (const message of items) message.images = images.get(message.id) ?? []
    return { items, next: rows.length > limit && last ? [iso(last.created_at)!, Number(last.seq)] : null }
  }

  async imagesOf(messageIds: string[], withData: true): Promise<Map<string, StoredImage[]>>
  async imagesOf(messageIds: string[], withData?: false): Promise<Map<string, ImageInfo[]>>
  async imagesOf(messageIds: string[], withData = false): Promise<Map<string, ImageInfo[]>> {
    const images = new Map<string, ImageInfo[]>()
    if (messageIds.length === 0) return images
    const sql = await this.db()
    const rows = await sql`
      SELECT id, message_id, media_type, width, height, size ${withData ? sql`, data` : sql``} FROM attachments
      WHERE message_id = ANY(${messageIds}::text[]) ORDER BY message_id, position`
    for (const row of rows) images.set(row.message_id, [...(images.get(row.message_id) ?? []), toImage(row)])
    return images
  }

  async getAttachment(id: string, ownerId: string): Promise<StoredImage | undefined> {
    const sql = await this.db()
    // Through the message's session, or the response, whichever it belongs to.
    const [row] = await sql`
      SELECT a.id, a.media_type, a.width, a.height, a.size, a.data FROM attachments a
      LEFT JOIN messages m ON m.id = a.message_id LEFT JOIN sessions s ON s.id = m.session_id
      LEFT JOIN responses r ON r.id = a.response_id
      WHERE a.id = ${id} AND (s.owner_id = ${ownerId} OR r.owner_id = ${ownerId})`
    return row && (toImage(row) as StoredImage)
  }

  async childrenOf(sessionId: string, parentIds: Array<string | null>): Promise<Map<string | null, string[]>> {
    const rows = await (await this.db())`
      SELECT id, parent_id FROM messages
      WHERE session_id = ${sessionId} AND (parent_id = ANY(${parentIds.filter((id) => id !== null)}::text[]) OR (${parentIds.includes(null)} AND parent_id IS NULL))
      ORDER BY created_at, seq`
    const children = new Map<string | null, string[]>()
    for (const row of rows) children.set(row.parent_id, [...(children.get(row.parent_id) ?? []), row.id])
    return children
  }

  async setCurrentMessage(sessionId: string, messageId: string): Promise<{ currentMessageId: string } | 'missing' | 'busy'> {
    return (await this.db()).begin(async (tx) => {
      // Locked as a turn locks it: a reply that began on any instance is seen, and none begins meanwhile.
      await tx`SELECT 1 FROM sessions WHERE id = ${sessionId} FOR UPDATE`
      const [leaf] = await tx`
        WITH RECURSIVE down(id, depth) AS (
          SELECT id, 0 FROM messages WHERE id = ${messageId} AND session_id = ${sessionId}
          UNION ALL
          SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.created_at DESC, c.seq DESC LIMIT 1), depth + 1
          FROM down WHERE down.id IS NOT NULL)
        SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1`
      if (!leaf) return 'missing'
      const [streaming] = await tx`SELECT 1 FROM messages WHERE session_id = ${sessionId} AND status = 'streaming'`
      if (streaming) return 'busy'
      await tx`UPDATE sessions SET current_message_id = ${leaf.id} WHERE id = ${sessionId}`
      return { currentMessageId: leaf.id as string }
    })
  }

  async getMessage(id: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name FROM messages WHERE id = ${id}`
    return row && toMessage(row)
  }

  async getReply(id: string): Promise<StoredReply | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, prompt_tokens, done_reason, event_count FROM messages WHERE id = ${id}`
    return row && { ...toMessage(row), prompt_tokens: row.prompt_tokens ?? null, done_reason: row.done_reason ?? null, event_count: row.event_count ?? null }
  }

  async streamingReply(sessionId: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name FROM messages WHERE session_id = ${sessionId} AND status = 'streaming'`
    return row && toMessage(row)
  }

  async getOwnedMessage(id: string, ownerId: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`
      SELECT m.id, m.role, m.content, m.created_at, m.model, m.tokens_used, m.status, m.parent_id, m.tool_calls, m.tool_call_id, m.tool_name
      FROM messages m JOIN sessions s ON s.id = m.session_id WHERE m.id = ${id} AND s.owner_id = ${ownerId}`
    return row && toMessage(row)
  }

  async addUserMessage(turn: UserTurn): Promise<{ userMessageId: string }> {
    return (await this.db()).begin(async (tx) => {
      const { userMessageId, writes } = await queueUserMessage(tx, turn, timestamp())
      await Promise.all(writes)
      return { userMessageId }
    })
  }

  async beginTurn(turn: UserTurn & { model: string }): Promise<{ userMessageId: string; reply: { id: string; createdAt: string }; newSession: boolean }> {
    return oneReplyAtATime((await this.db()).begin(async (tx) => {
      const now = timestamp()
      const { userMessageId, newSession, writes } = await queueUserMessage(tx, turn, now)
      const reply = { id: randomUUID(), createdAt: now }
      writes.push(insertMessage(tx, { id: reply.id, sessionId: turn.sessionId, role: 'assistant', content: '', model: turn.model, status: 'streaming', createdAt: now, owner: this.instanceId }))
      await Promise.all(writes)
      return { userMessageId, reply, newSession }
    }))
  }

  async beginReply(sessionId: string, parentId: string | null, model: string): Promise<{ id: string; createdAt: string; leafBefore: string | null }> {
    const id = randomUUID()
    const createdAt = timestamp()
    return oneReplyAtATime((await this.db()).begin(async (tx) => {
      const [session] = await tx`SELECT current_message_id FROM sessions WHERE id = ${sessionId} FOR UPDATE`
      await insertMessage(tx, { id, sessionId, role: 'assistant', content: '', model, status: 'streaming', createdAt, owner: this.instanceId, parentId })
      return { id, createdAt, leafBefore: (session?.current_message_id as string | null | undefined) ?? null }
    }))
  }

  async addResponseTurn(sessionId: string, ownerId: string, messages: ConversationMessage[], model: string): Promise<string> {
    return oneReplyAtATime((await this.db()).begin(async (tx) => {
      const now = timestamp()
      const { writes } = await insertMessages(tx, sessionId, ownerId, messages, now)
      const replyId = randomUUID()
      writes.push(insertMessage(tx, { id: replyId, sessionId, role: 'assistant', content: '', model, status: 'streaming', createdAt: now, owner: this.instanceId }))
      await Promise.all(writes)
      return replyId
    }))
  }

  async appendMessages(sessionId: string, ownerId: string, messages: ConversationMessage[]): Promise<string[]> {
    return (await this.db()).begin(async (tx) => {
      const { ids, writes } = await insertMessages(tx, sessionId, ownerId, messages, timestamp())
      await Promise.all(writes)
      return ids
    })
  }

  async getSessionMessage(sessionId: string, messageId: string): Promise<(Message & { seq: number }) | undefined> {
    const [row] = await (await this.db())`
      SELECT seq, id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name FROM messages WHERE id = ${messageId} AND session_id = ${sessionId}`
    return row && { ...toMessage(row), seq: Number(row.seq) }
  }

  async deleteMessage(sessionId: string, messageId: string): Promise<boolean> {
    return (await (await this.db())`DELETE FROM messages WHERE id = ${messageId} AND session_id = ${sessionId} AND status <> 'streaming'`).count > 0
  }

  async sessionMetadata(id: string): Promise<Record<string, string>> {
    const [row] = await (await this.db())`SELECT metadata FROM sessions WHERE id = ${id}`
    return (row?.metadata as Record<string, string> | null) ?? {}
  }

  async setSessionMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    const sql = await this.db()
    await sql`UPDATE sessions SET metadata = ${sql.json(metadata)} WHERE id = ${id}`
  }

  async discardReply(id: string, leafAfter?: string | null): Promise<void> {
    await (await this.db()).begin(async (tx) => {
      // Before the reply goes: the delete trigger then leaves a leaf that is no longer the reply alone.
      if (leafAfter !== undefined) {
        await tx`
          UPDATE sessions SET current_message_id = ${leafAfter}
          WHERE id = (SELECT session_id FROM messages WHERE id = ${id} AND status = 'streaming' AND content = '')`
      }
      await tx`DELETE FROM messages WHERE id = ${id} AND status = 'streaming' AND content = ''`
    })
  }

  async history(sessionId: string, leafId?: string | null): Promise<History> {
    const sql = await this.db()
    // One round trip: the session's cut on every row (and on the one row of a path without messages).
    const rows = await sql`
      WITH RECURSIVE ${pathTo(sql, sessionId, leafId)}
      SELECT s.context_cut_message_id, s.context_summary, m.id, m.role, m.content, m.tool_calls, m.tool_name, m.image_count
      FROM sessions s LEFT JOIN (path JOIN (
        SELECT *, (SELECT count(*) FROM attachments a WHERE a.message_id = messages.id) AS image_count FROM messages WHERE session_id = ${sessionId}
      ) m ON m.id = path.id AND (m.content <> '' OR m.image_count > 0 OR m.tool_calls IS NOT NULL OR m.role = 'tool')) ON m.session_id = s.id
      WHERE s.id = ${sessionId} ORDER BY m.created_at, m.seq`
    // A message without text is sent when it shows images or makes tool calls; a tool result always.
    const messages: HistoryEntry[] = rows.filter((row) => row.id !== null).map((row) => ({
      id: row.id as string, role: row.role as Role, content: row.content as string, ...(Number(row.image_count) ? { imageCount: Number(row.image_count) } : {}), ...toolHistoryOf(row),
    }))
    return { messages, cut: cutOnPath(toContextCut(rows[0]), messages) }
  }

  async search(ownerId: string, words: string[], limit: number, offset: number): Promise<SearchHit[]> {
    // Words are letters and digits only: as prefixes (:*), all of them (&).
    const query = words.map((word) => `${word}:*`).join(' & ')
    const rows = await (await this.db())`
      WITH q AS (SELECT to_tsquery('simple', ${query}) AS query)
      SELECT session_id, title, message_id, role, text, created_at FROM (
        SELECT s.id AS session_id, s.title, m.id AS message_id, m.role, left(m.content, ${SEARCH_TEXT_CHARS}) AS text, m.created_at, ts_rank(m.search, q.query) AS score
        FROM q, messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.search @@ q.query AND s.owner_id = ${ownerId} AND m.status <> 'streaming'
        UNION ALL
        SELECT s.id, s.title, NULL, NULL, s.title, s.created_at, ts_rank(search_vector(s.title), q.query)
        FROM q, sessions s WHERE search_vector(s.title) @@ q.query AND s.owner_id = ${ownerId}) hits
      ORDER BY score DESC, created_at DESC, session_id, message_id NULLS FIRST LIMIT ${limit} OFFSET ${offset}`
    return rows.map(toSearchHit)
  }

  async contextCut(sessionId: string): Promise<ContextCut | null> {
    const [row] = await (await this.db())`SELECT context_cut_message_id, context_summary FROM sessions WHERE id = ${sessionId}`
    return toContextCut(row)
  }

  async setContextCut(sessionId: string, cut: ContextCut): Promise<void> {
    await (await this.db())`UPDATE sessions SET context_cut_message_id = ${cut.messageId}, context_summary = ${cut.summary} WHERE id = ${sessionId}`
  }

  async addToolStep(replyId: string, { calls, results, awaiting }: ToolStep): Promise<string | null> {
    return (await this.db()).begin(async (tx) => {
      const [reply] = await tx`SELECT session_id, parent_id, created_at FROM messages WHERE id = ${replyId} AND status = 'streaming' FOR UPDATE`
      if (!reply) return null
      const sessionId = reply.session_id as string
      const times = toolStepTimes(iso(reply.created_at)!, timestamp())
      let parentId = (reply.parent_id as string | null) ?? null
      const rows: Row[] = []
      const add = (role: Role, content: string, model: string | null, status: MessageStatus, toolCalls: string | null, callId: string | null, toolName: string | null) => {
        const id = randomUUID()
        rows.push({ id, session_id: sessionId, role, content, model, status, created_at: times.step, parent_id: parentId, tool_calls: toolCalls, tool_call_id: callId, tool_name: toolName })
        parentId = id
      }
      if (calls) add('assistant', calls.content, calls.model, 'complete', JSON.stringify(calls.toolCalls), null, null)
      for (const result of results) add('tool', result.content, null, result.ok ? 'complete' : 'error', null, result.callId, result.name)
      await tx`INSERT INTO messages ${tx(rows, 'id', 'session_id', 'role', 'content', 'model', 'status', 'created_at', 'parent_id', 'tool_calls', 'tool_call_id', 'tool_name')}`
      await tx`UPDATE messages SET parent_id = ${parentId}, created_at = ${times.reply}, content = '' WHERE id = ${replyId}`
      // The inserts made each of them the leaf; the reply is.
      await tx`UPDATE sessions SET current_message_id = ${replyId} WHERE id = ${sessionId}`
      if (awaiting) {
        // The turn's state once, with the first call: it holds every earlier result of the turn.
        const approvals = awaiting.calls.map((call, index) => ({
          call_id: call.call_id, session_id: sessionId, reply_id: replyId, name: call.name, arguments: JSON.stringify(call.arguments), turn: index === 0 ? awaiting.turn : '', created_at: times.step, expires_at: awaiting.expiresAt,
        }))
        await tx`INSERT INTO tool_approvals ${tx(approvals, 'call_id', 'session_id', 'reply_id', 'name', 'arguments', 'turn', 'created_at', 'expires_at')}`
        await tx`UPDATE messages SET status = 'awaiting_approval', event_count = ${awaiting.events} WHERE id = ${replyId}`
      }
      return times.reply
    })
  }

  async answerApproval(sessionId: string, ownerId: string, callId: string, approve: boolean, now: string): Promise<ApprovalAnswer> {
    return (await this.db()).begin(async (tx): Promise<ApprovalAnswer> => {
      // Locked: two answers to one call at once, on two instances, are taken one after the other.
      const [row] = await tx`
        SELECT a.reply_id, a.decision, a.expires_at <= ${now}::timestamptz AS expired, s.owner_id
        FROM tool_approvals a JOIN sessions s ON s.id = a.session_id WHERE a.call_id = ${callId} AND a.session_id = ${sessionId} FOR UPDATE OF a`
      if (!row || row.owner_id !== ownerId) return 'missing'
      if (row.decision !== null || row.expired) return 'answered'
      await tx`UPDATE tool_approvals SET decision = ${approve ? 'approved' : 'denied'}, decided_at = ${now} WHERE call_id = ${callId}`
      const [{ n }] = await tx`SELECT count(*)::int AS n FROM tool_approvals WHERE reply_id = ${row.reply_id} AND decision IS NULL` as unknown as [{ n: number }]
      return { replyId: row.reply_id as string, remaining: n }
    })
  }

  async expireApprovals(now: string): Promise<PausedReply[]> {
    // The outer query sees the table as it was before the update: what still waits is what is not yet due.
    const rows = await (await this.db())`
      WITH expired AS (
        UPDATE tool_approvals SET decision = 'denied', decided_at = expires_at WHERE decision IS NULL AND expires_at <= ${now} RETURNING reply_id, session_id)
      SELECT DISTINCT reply_id, session_id FROM expired e
      WHERE NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = e.reply_id AND p.decision IS NULL AND p.expires_at > ${now})`
    return rows.map((row) => ({ replyId: row.reply_id as string, sessionId: row.session_id as string }))
  }

  async nextApprovalExpiry(): Promise<string | null> {
    const [row] = await (await this.db())`SELECT min(expires_at) AS at FROM tool_approvals WHERE decision IS NULL`
    return iso(row?.at ?? null)
  }

  async answeredReplies(): Promise<PausedReply[]> {
    // Only a paused reply's rows still hold its turn (a claim clears it): a few rows, not every approval ever made.
    const rows = await (await this.db())`
      SELECT DISTINCT a.reply_id, a.session_id FROM tool_approvals a JOIN messages m ON m.id = a.reply_id AND m.status = 'awaiting_approval'
      WHERE a.turn <> '' AND NOT EXISTS (SELECT 1 FROM tool_approvals p WHERE p.reply_id = a.reply_id AND p.decision IS NULL)`
    return rows.map((row) => ({ replyId: row.reply_id as string, sessionId: row.session_id as string }))
  }

  async claimAnsweredReply(replyId: string): Promise<ClaimedReply | null> {
    return oneReplyAtATime((await this.db()).begin(async (tx) => {
      const [reply] = await tx`
        SELECT m.session_id, m.model, m.event_count, m.created_at, s.owner_id FROM messages m JOIN sessions s ON s.id = m.session_id
        WHERE m.id = ${replyId} AND m.status = 'awaiting_approval' FOR UPDATE OF m`
      if (!reply) return null
      const rows = await tx`SELECT call_id, name, arguments, turn, decision, decided_at, expires_at FROM tool_approvals WHERE reply_id = ${replyId} ORDER BY created_at, call_id`
      const turn = rows.find((row) => row.turn !== '')?.turn as string | undefined
      if (turn === undefined || rows.some((row) => row.decision === null)) return null
      await tx`UPDATE messages SET status = 'streaming', owner_instance = ${this.instanceId} WHERE id = ${replyId}`
      await tx`UPDATE tool_approvals SET turn = '' WHERE reply_id = ${replyId}`
      return {
        sessionId: reply.session_id as string,
        ownerId: reply.owner_id as string,
        replyId,
        createdAt: iso(reply.created_at)!,
        model: reply.model as string,
        events: Number(reply.event_count ?? 0),
        turn,
        calls: rows.map((row) => ({ call_id: row.call_id as string, name: row.name as string, arguments: JSON.parse(row.arguments as string) as Record<string, unknown>, decision: decisionOf(row, (value) => iso(value as Date)!) })),
      }
    }))
  }

  async pendingApprovals(sessionId: string): Promise<PendingApproval[]> {
    const rows = await (await this.db())`
      SELECT call_id, name, arguments, reply_id, expires_at FROM tool_approvals WHERE session_id = ${sessionId} AND decision IS NULL ORDER BY created_at, call_id`
    return rows.map((row) => ({ call_id: row.call_id, name: row.name, arguments: JSON.parse(row.arguments as string) as Record<string, unknown>, reply_id: row.reply_id, expires_at: iso(row.expires_at)! }))
  }

  async checkpointReply(id: string, content: string): Promise<boolean> {
    return (await (await this.db())`UPDATE messages SET content = ${content} WHERE id = ${id} AND status = 'streaming'`).count > 0
  }

  async finishReply(id: string, reply: FinishedReply): Promise<boolean> {
    const result = await (await this.db())`
      UPDATE messages SET content = ${reply.content}, status = ${reply.status}, tokens_used = ${reply.tokensUsed ?? null},
        prompt_tokens = ${reply.promptTokens ?? null}, done_reason = ${reply.doneReason ?? null}, ollama_host = ${reply.host ?? null}, event_count = ${reply.events ?? null}
      WHERE id = ${id} AND status = 'streaming'`
    return result.count > 0
  }

  async interruptStreamingReplies(): Promise<number> {
    // Only this instance's: the others' replies run on (lib/store/postgres/cluster.ts closes a dead instance's).
    return (await (await this.db())`UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' AND owner_instance = ${this.instanceId}`).count
  }
}

interface NewMessage {
  id: string
  sessionId: string
  role: Role
  content: string
  model: string | null
  status: MessageStatus
  createdAt: string
  /** The instance generating a streaming reply. */
  owner?: string
  /** What it follows (null: nothing); by default the session's active leaf. */
  parentId?: string | null | undefined
  images?: NewImage[] | undefined
  /** A turn with tools (an imported one): an assistant message's calls; a tool message's call and tool. */
  toolCalls?: ToolCall[] | undefined
  callId?: string | undefined
  toolName?: string | undefined
}

/**
 * The CTE `path(id)`: the path that ends at `leafId` (by default the session's active leaf; null:
 * an empty path), followed up through the parents. UNION: a cycle could only repeat.
 */
function pathTo(sql: Sql, sessionId: string, leafId?: string | null) {
  const leaf = leafId === undefined ? sql`current_message_id` : sql`${leafId}::text`
  return sql`path(id) AS (
    SELECT ${leaf} FROM sessions WHERE id = ${sessionId}
    UNION
    SELECT m.parent_id FROM messages m JOIN path ON m.id = path.id)`
}

/**
 * Sends one message's INSERT; not awaited here, so that a turn's writes go out pipelined, in order,
 * on its connection. The insert trigger makes it the session's active leaf.
 */
function insertMessage(tx: TransactionSql, message: NewMessage): PromiseLike<unknown> {
  const parent = message.parentId === undefined ? tx`(SELECT current_message_id FROM sessions WHERE id = ${message.sessionId})` : tx`${message.parentId}::text`
  const inserted = tx`
    INSERT INTO messages (id, session_id, role, content, model, status, created_at, owner_instance, parent_id, tool_calls, tool_call_id, tool_name)
    VALUES (${message.id}, ${message.sessionId}, ${message.role}, ${message.content}, ${message.model}, ${message.status}, ${message.createdAt}, ${message.owner ?? null}, ${parent},
      ${message.toolCalls ? JSON.stringify(message.toolCalls) : null}, ${message.callId ?? null}, ${message.toolName ?? null})`
  if (!message.images?.length) return inserted
  // postgres.js sends a query when its `then` is first called: the message and its images go out
  // together where the caller's Promise.all reaches them (each `then` called right here, not in
  // later microtasks as Promise.all would), so a turn's writes stay in order.
  const queries = [inserted, ...message.images.map((image, position) => tx`
    INSERT INTO attachments (id, message_id, position, media_type, width, height, size, data, created_at)
    VALUES (${image.id ?? randomUUID()}, ${message.id}, ${position}, ${image.mediaType}, ${image.width}, ${image.height}, ${image.data.byteLength},
      ${Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength)}, ${message.createdAt})`)]
  return {
    then: (resolve, reject) => Promise.all(queries.map((query) => new Promise((done, fail) => query.then(done, fail)))).then(resolve, reject),
  }
}

/**
 * A turn's transaction, its second streaming reply in a session refused with 409: the unique
 * index on streaming replies (migrations/postgres/002) holds across every instance.
 */
async function oneReplyAtATime<T>(turn: Promise<T>): Promise<T> {
  try {
    return await turn
  } catch (error) {
    if ((error as { constraint_name?: string }).constraint_name === 'idx_messages_one_streaming') {
      throw new HttpProblem(409, 'conflict', 'A reply is already being generated in this session; cancel it or wait for it to finish.')
    }
    throw error
  }
}

interface QueuedTurn {
  userMessageId: string
  newSession: boolean
  /** The turn's writes, sent pipelined; the caller adds its own and awaits them all. */
  writes: Array<PromiseLike<unknown>>
}

/**
 * The same rules as SQLite's: the session made when missing (named by this message), its system
 * prompt once, the title from its first user message. One round trip reads the session (its row
 * locked for the turn: two turns in one session are written one after the other) and what it
 * already has; the writes then go out together.
 */
async function queueUserMessage(tx: TransactionSql, { sessionId, ownerId, content, system, parentId, images }: UserTurn, now: string): Promise<QueuedTurn> {
  const [session] = await tx`
    SELECT title, owner_id,
      EXISTS (SELECT 1 FROM messages WHERE session_id = ${sessionId} AND role = 'user') AS has_user,
      EXISTS (SELECT 1 FROM messages WHERE session_id = ${sessionId} AND role = 'system') AS has_system
    FROM sessions WHERE id = ${sessionId} FOR UPDATE`
  if (session && session.owner_id !== ownerId) throw noSuchSession(sessionId)
  const writes: Array<PromiseLike<unknown>> = []
  if (!session) writes.push(tx`INSERT INTO sessions (id, title, created_at, updated_at, owner_id) VALUES (${sessionId}, ${titleFromMessage(content)}, ${now}, ${now}, ${ownerId})`)
  // An edit (placed after a given parent) keeps the session's beginning as it is.
  if (system && parentId === undefined && !session?.has_system) {
    writes.push(insertMessage(tx, { id: randomUUID(), sessionId, role: 'system', content: system, model: null, status: 'complete', createdAt: now }))
  }
  const userMessageId = randomUUID()
  writes.push(insertMessage(tx, { id: userMessageId, sessionId, role: 'user', content, model: null, status: 'complete', createdAt: now, parentId, images }))
  if (session && session.title === DEFAULT_TITLE && !session.has_user) writes.push(tx`UPDATE sessions SET title = ${titleFromMessage(content)} WHERE id = ${sessionId}`)
  return { userMessageId, newSession: !session, writes }
}

/** Messages appended in order; the first user message checks the owner and may name the session. */
async function insertMessages(tx: TransactionSql, sessionId: string, ownerId: string, messages: ConversationMessage[], now: string): Promise<{ ids: string[]; writes: Array<PromiseLike<unknown>> }> {
  const ids: string[] = []
  const writes: Array<PromiseLike<unknown>> = []
  let userSeen = false
  for (const { role, content, images } of messages) {
    if (role === 'user' && !userSeen) {
      userSeen = true
      const queued = await queueUserMessage(tx, { sessionId, ownerId, content, images }, now)
      ids.push(queued.userMessageId)
      writes.push(...queued.writes)
      continue
    }
    const id = randomUUID()
    writes.push(insertMessage(tx, { id, sessionId, role, content, model: null, status: 'complete', createdAt: now, images }))
    ids.push(id)
  }
  return { ids, writes }
}

function toSession(row: Row): Session {
  return { id: row.id, title: row.title, created_at: iso(row.created_at)!, updated_at: iso(row.updated_at)!, message_count: Number(row.message_count), current_message_id: row.current_message_id ?? null }
}

function toMessage(row: Row): Message {
  return {
    id: row.id,
    role: row.role as Role,
    content: row.content,
    created_at: iso(row.created_at)!,
    ...(row.model == null ? {} : { model: row.model as string }),
    ...(row.tokens_used == null ? {} : { tokens_used: Number(row.tokens_used) }),
    status: row.status as MessageStatus,
    parent_id: row.parent_id ?? null,
    ...toolFieldsOf(row),
  }
}
