import { defineFunction } from '../lib/handler.ts'
import { isShareToken, NO_SHARED_CHAT_PAGE, sharedChatPage, SHARED_PAGE_HEADERS, shareTokenHash } from '../lib/conversations/share.ts'

/**
 * GET /s/{token}: a shared chat, read-only, without signing in: a page of its own with no script,
 * not indexed. A missing, revoked or switched-off link is the same 404 page.
 */
export default defineFunction({
  name: 'shared-chat',
  method: 'GET',
  path: '/s/:token',
  access: 'public',
  async handle(_request, { app, params }) {
    const token = params.token ?? ''
    const chat = app.config.shareLinks && isShareToken(token) ? await app.database.shares.sharedChat(shareTokenHash(token)) : undefined
    if (!chat) return new Response(NO_SHARED_CHAT_PAGE, { status: 404, headers: SHARED_PAGE_HEADERS })
    return new Response(sharedChatPage(chat), { headers: SHARED_PAGE_HEADERS })
  },
})
