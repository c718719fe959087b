import { defineFunction } from '../lib/handler.ts'

/** GET /v1/folders: the caller's folders by name, each with how many of their chats (not archived) it holds. */
export default defineFunction({
  name: 'folders-list',
  method: 'GET',
  path: '/v1/folders',
  async handle(_request, { app, principal }) {
    return Response.json({ folders: await app.store.listFolders(principal.userId) })
  },
})
