// Sharing the open chat (docs/page.md): a read-only snapshot at a link, its links listed with
// Revoke. Shown only when the server has SHARE_LINKS=on (GET /v1/shares answers).
import { api } from './api.ts'
import { showError, state, ui } from './dom.ts'
import { copied } from './render.ts'

interface Share { id: string; session_id: string; message_count: number; created_at: string }

/** Whether the server shares chats: Share… shows in the chat's menu when it does. */
export async function loadSharing(): Promise<void> {
  const response = await fetch('/v1/shares').catch(() => null)
  ui.share.hidden = response?.status !== 200
}

async function showShares(sessionId: string): Promise<void> {
  const { shares } = await api<{ shares: Share[] }>(`/v1/shares?session_id=${sessionId}`)
  ui.shareList.replaceChildren(...shares.map((share) => {
    const item = document.createElement('li')
    const when = new Date(share.created_at).toLocaleString()
    item.append(`Made ${when}, ${share.message_count} message${share.message_count === 1 ? '' : 's'} `)
    const revoke = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Revoke' })
    revoke.setAttribute('aria-label', `Revoke the link made ${when}`)
    revoke.addEventListener('click', () => void api(`/v1/shares/${share.id}`, { method: 'DELETE' }).then(() => {
      ui.shareUrl.value = ''
      ui.shareCreated.hidden = true
      return showShares(sessionId)
    }, (error: Error) => showError(error.message)))
    item.append(revoke)
    return item
  }))
  ui.shareNone.hidden = shares.length > 0
}

export function wireSharing(): void {
  ui.share.addEventListener('click', () => {
    const id = state.sessionId
    if (!id) return
    ui.shareCreated.hidden = true
    ui.shareDialog.showModal()
    void showShares(id).catch((error: Error) => showError(error.message))
  })
  ui.shareCreate.addEventListener('click', () => {
    const id = state.sessionId
    if (!id) return
    void api<Share & { url: string }>(`/v1/sessions/${id}/shares`, { method: 'POST' }).then(async (share) => {
      // The link is answered this once (the server keeps only its hash): shown now, to copy.
      ui.shareUrl.value = new URL(share.url, location.origin).href
      ui.shareCreated.hidden = false
      ui.shareUrl.select()
      await showShares(id)
    }, (error: Error) => showError(error.message))
  })
  ui.shareCopy.addEventListener('click', () => void navigator.clipboard?.writeText(ui.shareUrl.value).then(() => copied(ui.shareCopy), () => {}))
}
