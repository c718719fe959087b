import { createHash, randomBytes } from 'node:crypto'
import type { ChatStore } from '../store/store.ts'
import type { MessageCursor } from '../store/chat-store.ts'
import type { SharedChat, SharedMessage } from '../store/share-store.ts'

/** 32 random bytes, base64url: unguessable, and what the link carries. */
export const newShareToken = (): string => randomBytes(32).toString('base64url')

/** What the database keeps of a token: its SHA-256, so a copy of the database opens no link. */
export const shareTokenHash = (token: string): string => createHash('sha256').update(token).digest('hex')

/** A token as newShareToken makes them; anything else is not looked up. */
export const isShareToken = (token: string): boolean => /^[A-Za-z0-9_-]{43}$/.test(token)

/**
 * What a link shows of a chat: the questions and replies of its active path as they are now
 * (not its system prompt, tool steps, or a reply still being written).
 */
export async function sharedMessagesOf(store: ChatStore, sessionId: string): Promise<SharedMessage[]> {
  const shared: SharedMessage[] = []
  let after: MessageCursor | null = null
  do {
    const page = await store.listMessages(sessionId, 500, after)
    for (const message of page.items) {
      if ((message.role !== 'user' && message.role !== 'assistant') || message.status === 'streaming' || !message.content.trim()) continue
      shared.push({ role: message.role, content: message.content, created_at: message.created_at, ...(message.role === 'assistant' && message.model ? { model: message.model } : {}) })
    }
    after = page.next
  } while (after)
  return shared
}

const STYLE = [
  ':root{color-scheme:light dark;font-family:system-ui,sans-serif}',
  'body{margin:0 auto;max-width:48rem;padding:1rem;line-height:1.5;overflow-wrap:anywhere}',
  'ol{list-style:none;padding:0;display:grid;gap:1rem}',
  'li{border:1px solid #8884;border-radius:8px;padding:.75rem 1rem}',
  'li.user{background:#8881}',
  '.who{font-size:.8rem;opacity:.75;margin:0 0 .25rem}',
  '.text{white-space:pre-wrap;overflow-wrap:anywhere;margin:0}',
  '.note{opacity:.75;font-size:.9rem}',
  'h1{font-size:1.5rem}',
].join('')

/**
 * The shared page allows no script at all, and only this style (by its hash): whatever a
 * chat holds is text, escaped, and never runs.
 */
export const SHARED_PAGE_HEADERS: Record<string, string> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  // Not for search engines, not kept by caches (a revoked link is gone at once), no Referer to where a reader goes.
  'x-robots-tag': 'noindex, nofollow',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
}

export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!)

/** A page of text with no script (SHARED_PAGE_HEADERS): `body` is HTML, its text escaped by the caller. */
export function plainPage(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">`
    + `<meta name="robots" content="noindex, nofollow"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`
}

/** A shared chat as a page of its own: its title, when it was shared, each message as text. */
export function sharedChatPage(chat: SharedChat): string {
  const messages = chat.messages.map((message) => {
    const who = message.role === 'user' ? 'User' : `Assistant${message.model ? ` · ${message.model}` : ''}`
    return `<li class="${message.role}"><p class="who">${escapeHtml(who)}</p><p class="text">${escapeHtml(message.content)}</p></li>`
  }).join('')
  return plainPage(`${chat.title} · a shared chat`, `<h1>${escapeHtml(chat.title)}</h1>`
    + `<p class="note">A read-only copy of a chat, shared on ${escapeHtml(chat.created_at.slice(0, 10))}: messages written after that are not in it.</p>`
    + `<ol>${messages}</ol>`)
}

/** What a missing, revoked or switched-off link shows (the same for each: a link's fate is not told). */
export const NO_SHARED_CHAT_PAGE = plainPage('No such shared chat', '<h1>No such shared chat</h1><p>This link does not exist, or its owner revoked it.</p>')
