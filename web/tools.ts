// Tools (docs/tools.md): the calls a reply made, folded under it, Approve / Deny for a call that
// waits, and the switch that offers the model the server's tools. Everything a tool or the model
// wrote is shown as text, never as HTML.
import { api } from './api.ts'
import { imageThumbnails, showError, state, ui, type Message, type ToolCall } from './dom.ts'

/** What a call came to, as a `tool_result` event or a stored tool message says. */
export interface CallResult { ok: boolean; content: string; duration_ms?: number; images?: Message['images'] }

/** Only these become links in a result: a server's `javascript:` or `data:` address stays text. */
const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"'\]\[()]+/g

/** `text` into `element`, as text, its http(s) addresses as links that open apart (a resource link a tool gave, a page it read). */
function linkedText(element: HTMLElement, text: string): void {
  element.replaceChildren()
  let at = 0
  for (const match of text.matchAll(WEB_ADDRESS)) {
    const address = match[0].replace(/[.,;:!?]+$/, '')
    if (!URL.canParse(address)) continue
    element.append(text.slice(at, match.index))
    const link = document.createElement('a')
    link.href = address
    link.target = '_blank'
    link.rel = 'noopener noreferrer nofollow'
    link.textContent = address
    element.append(link)
    at = match.index + address.length
  }
  element.append(text.slice(at))
}

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

/** A running call's progress, as its server reports it: "running: 40% (2 of 5), Reading page 2". */
export function setProgress(reply: HTMLLIElement, callId: string, { progress, total, message }: { progress: number; total?: number | undefined; message?: string | undefined }): void {
  const outcome = reply.querySelector<HTMLElement>(`details.tool-call[data-call-id="${CSS.escape(callId)}"] .tool-outcome`)
  if (!outcome) return
  const amount = total ? `${Math.round((100 * progress) / total)}% (${progress} of ${total})` : String(progress)
  outcome.textContent = `running: ${amount}${message ? `, ${message}` : ''}`
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
  linkedText(shown, result.content)
  if (result.images?.length) setResultImages(reply, callId, result.images)
}

/** The images a call's result shows (a `tool_images` event, or a stored tool message's), under its text. */
export function setResultImages(reply: HTMLLIElement, callId: string, images: NonNullable<Message['images']>): void {
  const item = reply.querySelector<HTMLDetailsElement>(`details.tool-call[data-call-id="${CSS.escape(callId)}"]`)
  if (!item || !images.length) return
  item.querySelector(':scope > .images')?.remove()
  item.querySelector('.tool-result')!.after(imageThumbnails(images))
  // An image is what a reader wants to see: the call opens.
  item.open = true
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
        if (step.role === 'tool') setResult(item, step.call_id!, { ok: step.status === 'complete', content: step.content, images: step.images })
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

/**
 * For an admin, the MCP servers that wait for an OAuth sign-in (docs/tools.md "Servers that sign in
 * with OAuth"), each with a button that starts it in a new tab; the tools are listed again when
 * this tab is back in front.
 */
function offerSignIns(names: string[]): void {
  const note = ui.toolSignIn
  note.hidden = !state.isAdmin || names.length === 0
  if (note.hidden) return
  const text = document.createElement('span')
  text.textContent = `${names.length === 1 ? 'An MCP server needs' : 'MCP servers need'} an admin to sign in before ${names.length === 1 ? 'its' : 'their'} tools can be used: `
  note.replaceChildren(text, ...names.map((name) => {
    const button = document.createElement('button')
    button.type = 'button'
    button.textContent = `Sign in to ${name}`
    button.addEventListener('click', () => {
      button.disabled = true
      void api<{ authorization_url: string }>(`/v1/admin/mcp/${encodeURIComponent(name)}/sign-in`, { method: 'POST' }).then(
        ({ authorization_url: url }) => {
          window.open(url, '_blank', 'noopener')
          text.textContent = `Finish signing in to ${name} in the new tab; its tools appear here when you come back. `
          button.disabled = false
        },
        (error: Error) => {
          showError(error.message)
          button.disabled = false
        },
      )
    })
    return button
  }))
}

// Back from a sign-in's tab: the servers are listed again.
window.addEventListener('focus', () => {
  if (!ui.toolSignIn.hidden) void loadTools()
})

/** Shows the tools switch when the server offers any tool; its state is the chat's `tools`. */
export async function loadTools(): Promise<void> {
  try {
    const { servers } = await api<{ servers: Array<{ name: string; status: string; tools: Array<{ name: string }> }> }>('/v1/tools')
    offerSignIns(servers.filter((server) => server.status === 'sign_in_required').map((server) => server.name))
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

/** A field of the form a tool's server asks its user to fill in (a flat JSON schema property). */
interface FormField {
  type?: string
  title?: string
  description?: string
  format?: string
  enum?: string[]
  oneOf?: Array<{ const?: string; title?: string }>
  anyOf?: Array<{ const?: string; title?: string }>
  items?: FormField
  minimum?: number
  maximum?: number
  maxLength?: number
  default?: unknown
}

/** What a request for input carries: its message and form. */
export interface InputRequest {
  input_id: string
  call_id: string
  name: string
  message: string
  requested_schema: { properties?: Record<string, FormField>; required?: string[] }
}

/** The choices of an enum field, each with its label: `enum`, or `oneOf`/`anyOf` of `{const, title}`. */
function choicesOf(field: FormField): Array<{ value: string; label: string }> | undefined {
  if (field.enum) return field.enum.map((value) => ({ value, label: value }))
  const options = field.oneOf ?? field.anyOf
  return options?.filter((option) => typeof option.const === 'string').map((option) => ({ value: option.const!, label: option.title ?? option.const! }))
}

/** One field of the form, labelled; `read` gives its value (undefined: left empty). */
function fieldOf(name: string, field: FormField, required: boolean): { element: HTMLElement; read: () => unknown } {
  const row = document.createElement('div')
  row.className = 'input-field'
  const id = `input-${crypto.randomUUID()}`
  const label = Object.assign(document.createElement('label'), { htmlFor: id, textContent: `${field.title ?? name}${required ? ' *' : ''}` })
  const hint = field.description ? Object.assign(document.createElement('small'), { textContent: field.description }) : undefined
  const many = field.type === 'array' ? choicesOf(field.items ?? {}) : undefined
  const choices = field.type === 'array' ? undefined : choicesOf(field)
  if (many) {
    // Several choices: a checkbox each, in a group named by the field.
    const group = document.createElement('fieldset')
    group.append(Object.assign(document.createElement('legend'), { textContent: field.title ?? name }))
    const boxes = many.map(({ value, label: text }) => {
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', value, checked: Array.isArray(field.default) && field.default.includes(value) })
      const wrap = document.createElement('label')
      wrap.append(box, ` ${text}`)
      group.append(wrap)
      return box
    })
    row.append(group)
    return { element: row, read: () => boxes.filter((box) => box.checked).map((box) => box.value) }
  }
  let control: HTMLInputElement | HTMLSelectElement
  if (choices) {
    control = document.createElement('select')
    if (!required || field.default === undefined) control.append(new Option('', ''))
    for (const { value, label: text } of choices) control.append(new Option(text, value, false, value === field.default))
  } else if (field.type === 'boolean') {
    control = Object.assign(document.createElement('input'), { type: 'checkbox', checked: field.default === true })
  } else {
    const number = field.type === 'number' || field.type === 'integer'
    const kinds: Record<string, string> = { email: 'email', uri: 'url', date: 'date', 'date-time': 'datetime-local' }
    control = Object.assign(document.createElement('input'), { type: number ? 'number' : (kinds[field.format ?? ''] ?? 'text') })
    if (number) {
      if (field.type === 'integer') control.step = '1'
      if (field.minimum !== undefined) control.min = String(field.minimum)
      if (field.maximum !== undefined) control.max = String(field.maximum)
    } else if (field.maxLength !== undefined) control.maxLength = field.maxLength
    if (field.default !== undefined) control.value = String(field.default)
  }
  control.id = id
  control.name = name
  if (required) control.required = true
  row.append(label, control)
  if (hint) row.append(hint)
  const read = (): unknown => {
    if (control instanceof HTMLInputElement && control.type === 'checkbox') return control.checked
    if (control.value === '') return undefined
    if (field.type === 'number' || field.type === 'integer') return Number(control.value)
    // A date and time is sent as the server reads one: ISO 8601 in UTC.
    if (field.format === 'date-time') return new Date(control.value).toISOString()
    return control.value
  }
  return { element: row, read }
}

/**
 * A form a tool's server asks its user to fill in mid-call (docs/tools.md "Input for a tool"):
 * its message, its fields, and Submit, Decline or Cancel. A value the server's form refuses is said
 * in the form, which stays; `input_answered` (here or in another tab) removes it.
 */
export function askInput(reply: HTMLLIElement, sessionId: string, request: InputRequest): void {
  const item = addCall(reply, { call_id: request.call_id, name: request.name, arguments: {} })
  item.querySelector('.tool-input')?.remove()
  item.open = true
  item.querySelector('.tool-outcome')!.textContent = 'waiting for your input'
  const form = document.createElement('form')
  form.className = 'tool-input'
  form.dataset.inputId = request.input_id
  form.setAttribute('aria-label', `Input for ${request.name}`)
  form.append(Object.assign(document.createElement('p'), { className: 'input-message', textContent: request.message }))
  const required = new Set(request.requested_schema.required ?? [])
  const fields = Object.entries(request.requested_schema.properties ?? {}).map(([name, field]) => ({ name, ...fieldOf(name, field, required.has(name)) }))
  for (const field of fields) form.append(field.element)
  const problem = Object.assign(document.createElement('p'), { className: 'input-problem', hidden: true })
  problem.setAttribute('role', 'alert')
  const bar = document.createElement('div')
  bar.className = 'input-actions'
  const send = async (action: 'accept' | 'decline' | 'cancel') => {
    const content = Object.fromEntries(fields.flatMap(({ name, read }) => (read() === undefined ? [] : [[name, read()]])))
    for (const button of bar.querySelectorAll('button')) button.disabled = true
    try {
      await api(`/v1/sessions/${sessionId}/tool-calls/${request.call_id}/input`, { method: 'POST', body: JSON.stringify(action === 'accept' ? { action, content } : { action }) })
      form.remove()
      item.querySelector('.tool-outcome')!.textContent = action === 'accept' ? 'running…' : `${action === 'decline' ? 'declined' : 'cancelled'}, running…`
    } catch (error) {
      problem.hidden = false
      problem.textContent = (error as Error).message
      for (const button of bar.querySelectorAll('button')) button.disabled = false
    }
  }
  const button = (label: string, action: 'accept' | 'decline' | 'cancel', type: 'submit' | 'button') => {
    const element = Object.assign(document.createElement('button'), { type, textContent: label })
    if (type === 'button') element.addEventListener('click', () => void send(action))
    return element
  }
  bar.append(button('Submit', 'accept', 'submit'), button('Decline', 'decline', 'button'), button('Cancel', 'cancel', 'button'))
  form.append(problem, bar)
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void send('accept')
  })
  item.append(form)
  form.querySelector<HTMLElement>('input, select')?.focus()
}

/** The input a call asked for was answered (here, in another tab, or by its time running out): its form goes. */
export function inputAnswered(reply: HTMLLIElement, callId: string, action: string): void {
  const item = reply.querySelector<HTMLDetailsElement>(`details.tool-call[data-call-id="${CSS.escape(callId)}"]`)
  if (!item?.querySelector('.tool-input')) return
  item.querySelector('.tool-input')!.remove()
  item.querySelector('.tool-outcome')!.textContent = action === 'accept' ? 'running…' : `${action === 'decline' ? 'declined' : 'no answer'}, running…`
}
