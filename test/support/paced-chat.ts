/**
 * What the tests of several instances share: a chat that moves one token at a time on the fake
 * Ollama's say, and reading a live stream to its end.
 */
import assert from 'node:assert/strict'
import { sseEvents, takeText, type SseEvent } from './app.ts'
import type { FakeOllama } from './fake-ollama.ts'

/**
 * A chat on `url` that waits after its first token: its live events so far. Paced (it moves on
 * with fake.release), or `stalled` (it waits until its request is aborted): paced permits are
 * shared by every paced chat, so at most one chat at a time is paced.
 */
export async function pacedChat(fake: FakeOllama, url: string, headers: Record<string, string>, { stalled = false } = {}) {
  const tokens = ['one ', 'two ', 'three ', 'four']
  if (stalled) {
    fake.next({ tokens, stallAfterTokens: 1 })
  } else {
    fake.next({ tokens, paced: true })
    fake.release(1)
  }
  const response = await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ message: 'hello' }) })
  if (response.status !== 200) assert.fail(`the chat was refused: ${await response.text()}`)
  const live = sseEvents(response)
  const seen = await takeText(live, 'one ')
  return { live, seen, sessionId: seen[0]!.data.session_id as string, replyId: seen[0]!.data.message_id as string }
}

/** Reads a live stream to its end: its events, pings left out. */
export async function rest(live: AsyncGenerator<SseEvent | { ping: true }>): Promise<SseEvent[]> {
  const events: SseEvent[] = []
  for await (const event of live) if ('data' in event) events.push(event)
  return events
}
