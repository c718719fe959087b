// Tools (docs/tools.md): the calls a reply made, folded under it, Approve / Deny for a call that
// waits, and the switch that offers the model the server's tools. Everything a tool or the model
// wrote is shown as text, never as HTML.
import { api } from './api.ts'
import { showError, ui, type Message, type ToolCall } from './dom.ts'

/** What a call came to, as a `tool_result` event or a stored tool message says. */
export interface CallResult { ok: boolean; content: string; duration_ms?: number }

/** The folded list of a reply's calls, made once, above its text. */
function callsOf(reply: HTMLLIElement): HTMLDivElement {
  let list = reply.querySelector<HTMLDivElement>(':scope > .tool-calls')
  if (!list) {
    list = document.createElement('div')
    list.className = 'tool-calls'
    reply.querySelector('.body')!.before(list)
  }
  return list
}

/** What the model wrote before its calls (it stays with them, apart from the answer). */
export function addStepText(reply: HTMLLIElement, text: string): void {
  if (!text.trim()) return
  const note = document.createElement('p')
  note.className = 'step-text'
  note.textContent = text
  callsOf(reply).append(note)
}

/** A call under its reply: its tool, its arguments, and (once it ended) its result and time. */
export function addCall(reply: HTMLLIElement, call: ToolCall): HTMLDetailsElement {
  const existing = reply.querySelector<HTMLDetailsElement>(`details.tool-call[data-call-id="${CSS.escape(call.call_id)}"]`)
  if (existing) return existing
  const item = document.createElement('details')
  item.className = 'tool-call'
  item.dataset.callId = call.call_id
  const summary = document.createElement('summary')
  const name = document.createElement('span')
  name.className = 'tool-name'
  name.textContent = call.name
  const outcome = document.createElement('span')
  outcome.className = 'tool-outcome'
  outcome.textContent = 'running…'
  summary.append(name, ' ', outcome)
  const args = document.createElement('pre')
  args.className = 'tool-arguments'
  // A program is shown as the code it is, not as a JSON string of it.
  if (call.name === 'run_python' && typeof call.arguments.code === 'string') {
    args.classList.add('tool-code')
    args.append(Object.assign(document.createElement('code'), { className: 'language-python', textContent: call.arguments.code }))
  } else args.textContent = JSON.stringify(call.arguments, null, 2)
  const result = document.createElement('pre')
  result.className = 'tool-result'
  result.hidden = true
  item.append(summary, args, result)
  callsOf(reply).append(item)
  return item
}

export function setResult(reply: HTMLLIElement, callId: string, result: CallResult): void {
  const item = reply.querySelector<HTMLDetailsElement>(`details.tool-call[data-call-id="${CSS.escape(callId)}"]`)
  if (!item) return
  item.querySelector('.approval')?.remove()
  item.dataset.outcome = result.ok ? 'ok' : 'failed'
  const time = result.duration_ms === undefined ? '' : `, ${result.duration_ms < 1000 ? `${result.duration_ms} ms` : `${(result.duration_ms / 1000).toFixed(1)} s`}`
  item.querySelector('.tool-outcome')!.textContent = `${result.ok ? 'done' : 'failed'}${time}`
  const shown = item.querySelector<HTMLPreElement>('.tool-result')!
  shown.hidden = false
  shown.textContent = result.content
}

/**
 * Approve / Deny on a call that waits. Once the reply's last waiting call is answered, the reply
 * goes on: `resume` follows it.
 */
export function askApproval(reply: HTMLLIElement, sessionId: string, call: ToolCall, resume: () => void): void {
  const item = addCall(reply, call)
  if (item.querySelector('.approval')) return
  item.open = true
  item.querySelector('.tool-outcome')!.textContent = 'waiting for your approval'
  const bar = document.createElement('div')
  bar.className = 'approval'
  const button = (label: string, approve: boolean) => {
    const element = document.createElement('button')
    element.type = 'button'
    element.textContent = label
    element.setAttribute('aria-label', `${label} ${call.name}`)
    element.addEventListener('click', () => {
      for (const each of bar.querySelectorAll('button')) each.disabled = true
      void api(`/v1/sessions/${sessionId}/tool-calls/${call.call_id}`, { method: 'POST', body: JSON.stringify({ approve }) }).then(
        () => {
          bar.remove()
          item.querySelector('.tool-outcome')!.textContent = approve ? 'approved' : 'denied'
          if (!reply.querySelector('.approval')) resume()
        },
        (error: Error) => {
          showError(error.message)
          for (const each of bar.querySelectorAll('button')) each.disabled = false
        },
      )
    })
    return element
  }
  bar.append(button('Approve', true), button('Deny', false))
  item.append(bar)
}

/**
 * A stored conversation as the page shows it: the messages of a turn's tool steps (the calls a
 * message made, their results) fold under the reply they led to.
 */
export function foldToolSteps(messages: Message[], render: (message: Message) => HTMLLIElement, sessionId: string, resume: (reply: HTMLLIElement) => void): HTMLLIElement[] {
  const items: HTMLLIElement[] = []
  let steps: Message[] = []
  for (const message of messages) {
    if (message.role === 'tool' || message.tool_calls?.length) {
      steps.push(message)
      continue
    }
    const item = render(message)
    if (message.role === 'assistant' && steps.length) {
      for (const step of steps) {
        if (step.role === 'tool') setResult(item, step.call_id!, { ok: step.status === 'complete', content: step.content })
        else {
          addStepText(item, step.content)
          for (const call of step.tool_calls!) addCall(item, call)
        }
      }
    }
    for (const call of message.approval_required ?? []) askApproval(item, sessionId, call, () => resume(item))
    steps = []
    items.push(item)
  }
  return items
}

let offeredTools: string[] = []

/** The names of the tools the server offers (a new chat's empty state lists them). */
export const toolNames = (): string[] => offeredTools

/** Shows the tools switch when the server offers any tool; its state is the chat's `tools`. */
export async function loadTools(): Promise<void> {
  try {
    const { servers } = await api<{ servers: Array<{ tools: Array<{ name: string }> }> }>('/v1/tools')
    offeredTools = servers.flatMap((server) => server.tools.map((tool) => tool.name))
    const count = offeredTools.length
    ui.toolsSwitch.hidden = count === 0
    ui.toolsSwitch.title = `Let the model call the server's ${count} tool${count === 1 ? '' : 's'} (those that need your approval ask first)`
  } catch {
    offeredTools = []
    ui.toolsSwitch.hidden = true
  }
}

/** `{tools: true}` when the switch is on, for a chat's payload. */
export const toolsChoice = (): { tools?: true } => (!ui.toolsSwitch.hidden && ui.useTools.checked ? { tools: true } : {})
