import { randomUUID } from 'node:crypto'
import { timestamp } from '../../shared/clock.ts'
import { type ConversationMessage, type FinishedReply, type Message, type MessageStatus, type ToolStep, toolStepTimes, type Role, type UserTurn, type StoredReply } from '../chat-store.ts'
import type { ReplyStore } from '../reply-store.ts'
import { PostgresPart } from './part.ts'
import { iso, type Row, toMessage, insertMessage, oneReplyAtATime, queueUserMessage, insertMessages } from './rows.ts'

export class PostgresReplies extends PostgresPart implements ReplyStore {

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


  async getReply(id: string): Promise<StoredReply | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms, tokens_per_second, prompt_tokens, sources, rating, done_reason, event_count FROM messages WHERE id = ${id}`
    return row && { ...toMessage(row), prompt_tokens: row.prompt_tokens ?? null, done_reason: row.done_reason ?? null, event_count: row.event_count ?? null }
  }


  async streamingReply(sessionId: string): Promise<Message | undefined> {
    const [row] = await (await this.db())`SELECT id, role, content, created_at, model, tokens_used, status, parent_id, tool_calls, tool_call_id, tool_name, thinking, thinking_ms, prompt_tokens, tokens_per_second, sources, rating, done_reason FROM messages WHERE session_id = ${sessionId} AND status = 'streaming'`
    return row && toMessage(row)
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


  async addToolStep(replyId: string, { calls, results, awaiting }: ToolStep): Promise<string | null> {
    return (await this.db()).begin(async (tx) => {
      const [reply] = await tx`SELECT session_id, parent_id, created_at FROM messages WHERE id = ${replyId} AND status = 'streaming' FOR UPDATE`
      if (!reply) return null
      const sessionId = reply.session_id as string
      const times = toolStepTimes(iso(reply.created_at)!, timestamp())
      let parentId = (reply.parent_id as string | null) ?? null
      const rows: Row[] = []
      const images: Row[] = []
      const add = (role: Role, content: string, model: string | null, status: MessageStatus, toolCalls: string | null, callId: string | null, toolName: string | null, thinking: string | null = null) => {
        const id = randomUUID()
        rows.push({ id, session_id: sessionId, role, content, model, status, created_at: times.step, parent_id: parentId, tool_calls: toolCalls, tool_call_id: callId, tool_name: toolName, thinking })
        parentId = id
        return id
      }
      if (calls) add('assistant', calls.content, calls.model, 'complete', JSON.stringify(calls.toolCalls), null, null, calls.thinking || null)
      for (const result of results) {
        const id = add('tool', result.content, null, result.ok ? 'complete' : 'error', null, result.callId, result.name)
        for (const [position, image] of (result.images ?? []).entries()) {
          images.push({ id: image.id ?? randomUUID(), message_id: id, position, media_type: image.mediaType, width: image.width, height: image.height, size: image.data.byteLength, data: Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), created_at: times.step })
        }
      }
      await tx`INSERT INTO messages ${tx(rows, 'id', 'session_id', 'role', 'content', 'model', 'status', 'created_at', 'parent_id', 'tool_calls', 'tool_call_id', 'tool_name', 'thinking')}`
      if (images.length) await tx`INSERT INTO attachments ${tx(images, 'id', 'message_id', 'position', 'media_type', 'width', 'height', 'size', 'data', 'created_at')}`
      await tx`UPDATE messages SET parent_id = ${parentId}, created_at = ${times.reply}, content = '', thinking = NULL WHERE id = ${replyId}`
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


  async checkpointReply(id: string, content: string, thinking: string | null = null): Promise<boolean> {
    return (await (await this.db())`UPDATE messages SET content = ${content}, thinking = ${thinking} WHERE id = ${id} AND status = 'streaming'`).count > 0
  }


  async finishReply(id: string, reply: FinishedReply): Promise<boolean> {
    const result = await (await this.db())`
      UPDATE messages SET content = ${reply.content}, thinking = ${reply.thinking || null}, thinking_ms = ${reply.thinking ? (reply.thinkingMs ?? null) : null}, tokens_per_second = ${reply.tokensPerSecond ?? null}, status = ${reply.status}, tokens_used = ${reply.tokensUsed ?? null},
        prompt_tokens = ${reply.promptTokens ?? null}, done_reason = ${reply.doneReason ?? null}, ollama_host = ${reply.host ?? null}, event_count = ${reply.events ?? null}
      WHERE id = ${id} AND status = 'streaming'`
    return result.count > 0
  }


  async interruptStreamingReplies(): Promise<number> {
    // Only this instance's: the others' replies run on (lib/store/postgres/cluster.ts closes a dead instance's).
    return (await (await this.db())`UPDATE messages SET status = 'interrupted' WHERE status = 'streaming' AND owner_instance = ${this.instanceId}`).count
  }
}
