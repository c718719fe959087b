import { randomUUID } from 'node:crypto'
import type { SQLInputValue } from 'node:sqlite'
import { timestamp } from '../../shared/clock.ts'
import { toolStepTimes, type ConversationMessage, type FinishedReply, type Message, type MessageStatus, type Role, type StoredReply, type ToolStep, type UserTurn } from '../chat-store.ts'
import type { ReplyStore } from '../reply-store.ts'
import { SqliteRole } from './database.ts'
import { MESSAGE_COLUMNS, toMessage } from './rows.ts'

export class SqliteReplies extends SqliteRole implements ReplyStore {
  readonly statements = this.prepare({
    getReply: `SELECT ${MESSAGE_COLUMNS}, done_reason, event_count FROM messages WHERE id = ?`,
    currentLeaf: 'SELECT current_message_id FROM sessions WHERE id = ?',
    discardReply: `DELETE FROM messages WHERE id = ? AND status = 'streaming' AND content = ''`,
    // Before the reply goes: the delete trigger then leaves a leaf that is no longer the reply alone.
    restoreLeaf: `UPDATE sessions SET current_message_id = ?1
       WHERE id = (SELECT session_id FROM messages WHERE id = ?2 AND status = 'streaming' AND content = '')`,
    checkpoint: `UPDATE messages SET content = ?, thinking = ? WHERE id = ? AND status = 'streaming'`,
    streamingReplyPlace: `SELECT session_id, parent_id, created_at FROM messages WHERE id = ? AND status = 'streaming'`,
    moveReply: `UPDATE messages SET parent_id = ?, created_at = ?, content = '', thinking = NULL WHERE id = ?`,
    insertApproval: `INSERT INTO tool_approvals (call_id, session_id, reply_id, name, arguments, turn, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    pauseReply: `UPDATE messages SET status = 'awaiting_approval', event_count = ? WHERE id = ?`,
    finish: `UPDATE messages SET content = ?, thinking = ?, thinking_ms = ?, tokens_per_second = ?, status = ?, tokens_used = ?, prompt_tokens = ?, done_reason = ?, ollama_host = ?, event_count = ?
       WHERE id = ? AND status = 'streaming'`,
    interruptStreaming: `UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'`,
  })

  async beginTurn(turn: UserTurn & { model: string }): Promise<{ userMessageId: string; reply: { id: string; createdAt: string }; newSession: boolean }> {
    return this.database.transaction(() => {
      const now = timestamp()
      const { userMessageId, newSession } = this.database.insertUserMessage(turn, now)
      const reply = { id: randomUUID(), createdAt: now }
      this.database.insert(reply.id, turn.sessionId, 'assistant', '', turn.model, 'streaming', now)
      return { userMessageId, reply, newSession }
    })
  }

  async beginReply(sessionId: string, parentId: string | null, model: string): Promise<{ id: string; createdAt: string; leafBefore: string | null }> {
    return this.database.transaction(() => {
      const leafBefore = (this.statements.currentLeaf.get(sessionId)?.current_message_id as string | null | undefined) ?? null
      const reply = { id: randomUUID(), createdAt: timestamp(), leafBefore }
      this.database.insert(reply.id, sessionId, 'assistant', '', model, 'streaming', reply.createdAt, { parentId })
      return reply
    })
  }

  async addResponseTurn(sessionId: string, ownerId: string, messages: ConversationMessage[], model: string): Promise<string> {
    return this.database.transaction(() => {
      const now = timestamp()
      this.database.insertMessages(sessionId, ownerId, messages, now)
      const replyId = randomUUID()
      this.database.insert(replyId, sessionId, 'assistant', '', model, 'streaming', now)
      return replyId
    })
  }

  async getReply(id: string): Promise<StoredReply | undefined> {
    const row = this.statements.getReply.get(id)
    const numberOrNull = (value: unknown) => (value == null ? null : Number(value))
    return row && { ...toMessage(row), prompt_tokens: numberOrNull(row.prompt_tokens), done_reason: row.done_reason == null ? null : String(row.done_reason), event_count: numberOrNull(row.event_count) }
  }

  async streamingReply(sessionId: string): Promise<Message | undefined> {
    const row = this.database.statements.getStreamingReply.get(sessionId)
    return row && toMessage(row)
  }

  async discardReply(id: string, leafAfter?: string | null): Promise<void> {
    this.database.transaction(() => {
      if (leafAfter !== undefined) this.statements.restoreLeaf.run(leafAfter, id)
      this.statements.discardReply.run(id)
    })
  }

  async addToolStep(replyId: string, { calls, results, awaiting }: ToolStep): Promise<string | null> {
    const { statements } = this.database
    return this.database.transaction(() => {
      const reply = this.statements.streamingReplyPlace.get(replyId)
      if (!reply) return null
      const sessionId = String(reply.session_id)
      const times = toolStepTimes(String(reply.created_at), timestamp())
      let parentId = reply.parent_id == null ? null : String(reply.parent_id)
      const add = (role: Role, content: string, model: string | null, status: MessageStatus, toolCalls: string | null, callId: string | null, toolName: string | null, thinking: string | null = null) => {
        const id = randomUUID()
        statements.insertToolMessage.run(id, sessionId, role, content, model, status, times.step, parentId, toolCalls, callId, toolName, thinking)
        parentId = id
        return id
      }
      if (calls) add('assistant', calls.content, calls.model, 'complete', JSON.stringify(calls.toolCalls), null, null, calls.thinking || null)
      for (const result of results) {
        const id = add('tool', result.content, null, result.ok ? 'complete' : 'error', null, result.callId, result.name)
        for (const [position, image] of (result.images ?? []).entries()) {
          statements.insertAttachment.run(image.id ?? randomUUID(), id, null, position, image.mediaType, image.width, image.height, image.data.byteLength, image.data, times.step)
        }
      }
      this.statements.moveReply.run(parentId, times.reply, replyId)
      // The inserts made each of them the leaf; the reply is.
      statements.setCurrent.run(replyId, sessionId)
      if (awaiting) {
        // The turn's state once, with the first call: it holds every earlier result of the turn.
        for (const [index, call] of awaiting.calls.entries()) {
          this.statements.insertApproval.run(call.call_id, sessionId, replyId, call.name, JSON.stringify(call.arguments), index === 0 ? awaiting.turn : '', times.step, awaiting.expiresAt)
        }
        this.statements.pauseReply.run(awaiting.events, replyId)
      }
      return times.reply
    })
  }

  async checkpointReply(id: string, content: string, thinking: string | null = null): Promise<boolean> {
    return Number(this.statements.checkpoint.run(content, thinking, id).changes) > 0
  }

  async finishReply(id: string, reply: FinishedReply): Promise<boolean> {
    const params: SQLInputValue[] = [
      reply.content,
      reply.thinking || null,
      reply.thinking ? (reply.thinkingMs ?? null) : null,
      reply.tokensPerSecond ?? null,
      reply.status,
      reply.tokensUsed ?? null,
      reply.promptTokens ?? null,
      reply.doneReason ?? null,
      reply.host ?? null,
      reply.events ?? null,
      id,
    ]
    return Number(this.statements.finish.run(...params).changes) > 0
  }

  /** Replies a crash left `streaming` become `interrupted`, with their last checkpointed text (one server per file: every one). */
  async interruptStreamingReplies(): Promise<number> {
    return Number(this.statements.interruptStreaming.run().changes)
  }
}
