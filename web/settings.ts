// A chat's settings on the page (docs/api.md "Chat settings"): the model picker and the think
// switch show the open chat's and change them; the Settings dialog changes its system prompt,
// temperature, context length and thinking. A new chat takes them with its first message.
import { showDocuments } from './documents.ts'
import { api } from './api.ts'
import { showError, state, ui, type ChatSettings } from './dom.ts'

const capabilities = new Map<string, Promise<string[] | null>>()

/** What a model can do (GET /v1/models/{id}), asked once per model. */
function capabilitiesOf(model: string): Promise<string[] | null> {
  let known = capabilities.get(model)
  if (!known) {
    known = api<{ capabilities: string[] | null }>(`/v1/models/${encodeURIComponent(model)}`).then((found) => found.capabilities, () => null)
    capabilities.set(model, known)
  }
  return known
}

/** Ollama's names: a model without a tag is its `latest`. */
const canonical = (model: string) => (/:[^/]*$/.test(model) ? model : `${model}:latest`)

/** The model the picker stands for: the chosen one, or DEFAULT_MODEL. */
const pickedModel = () => ui.model.value || state.defaultModel

/** Picks `model` (null: Default), adding it to the list when Ollama's list did not name it so. */
function pick(model: string | null): void {
  if (!model) {
    ui.model.value = ''
    return
  }
  const option = [...ui.model.options].find((candidate) => candidate.value && canonical(candidate.value) === canonical(model))
  if (option) ui.model.value = option.value
  else ui.model.append(new Option(model, model, true, true))
}

/** Shows the think switch only for a model that can think. */
async function showThinkSwitch(): Promise<boolean> {
  const model = pickedModel()
  const thinks = model ? ((await capabilitiesOf(model))?.includes('thinking') ?? false) : false
  if (model === pickedModel()) ui.thinkSwitch.hidden = !thinks
  return thinks
}

/** The model list, with "Default (DEFAULT_MODEL)" first; the model chosen (or the open chat's) stays chosen. */
export async function loadModels(): Promise<void> {
  // What is chosen when the list arrives (an open chat's model may have been picked meanwhile).
  let chosen = ui.model.value
  try {
    const { models, default_model: defaultModel } = await api<{ models: Array<{ name: string }>; default_model: string }>('/v1/models')
    chosen = ui.model.value
    state.defaultModel = defaultModel
    installed = models.map((model) => model.name)
    ui.model.replaceChildren(new Option(`Default (${defaultModel})`, ''), ...models.map((model) => new Option(model.name, model.name)))
  } catch {
    installed = null
    ui.model.replaceChildren(new Option('Default model', ''))
  }
  pick(chosen || null)
  showModelNote()
  await showThinkSwitch()
}

/** The models Ollama has (null while unknown: Ollama down). */
let installed: string[] | null = null

/** When the model a chat would use is the default and Ollama does not have it: how to get it, and what there is instead. */
function showModelNote(): void {
  const missing = installed !== null && !ui.model.value && !installed.some((name) => canonical(name) === canonical(state.defaultModel))
  ui.modelNote.hidden = !missing
  if (!missing) return
  const pull = Object.assign(document.createElement('code'), { textContent: `ollama pull ${state.defaultModel}` })
  const others = installed!.length ? ` or choose an installed one in Model: ${installed!.join(', ')}.` : '.'
  ui.modelNote.replaceChildren(`The default model ${state.defaultModel} is not installed in Ollama. Get it with `, pull, others)
}

/** The model and thinking a turn sends: what the composer shows, so a change not yet saved counts too. */
export function turnChoice(): { model?: string; think?: boolean | string } {
  const kept = state.settings?.think
  const think = ui.think.checked ? (typeof kept === 'string' ? kept : true) : false
  return { ...(ui.model.value ? { model: ui.model.value } : {}), ...(ui.thinkSwitch.hidden ? {} : { think }) }
}

/** Shows the open chat's settings (null: a new chat, which keeps what the composer shows). */
export function showSettings(settings: ChatSettings | null): void {
  state.settings = settings
  showDocuments(settings)
  ui.settings.disabled = settings === null
  if (!settings) return
  pick(settings.model)
  ui.think.checked = settings.think !== false
  void showThinkSwitch()
}

async function save(change: Record<string, unknown>): Promise<void> {
  const id = state.sessionId
  if (!id || !state.settings) return
  try {
    const saved = await api<ChatSettings>(`/v1/sessions/${id}`, { method: 'PATCH', body: JSON.stringify(change) })
    if (state.sessionId === id) state.settings = saved
  } catch (error) {
    showError((error as Error).message)
  }
}

/** A number field's value, or undefined when empty. */
const numberOf = (input: HTMLInputElement) => (input.value.trim() === '' ? undefined : Number(input.value))

const thinkOf = (value: string): boolean | string | null => (value === '' ? null : value === 'true' ? true : value === 'false' ? false : value)

export function wireSettings(): void {
  ui.model.addEventListener('change', () => {
    showModelNote()
    void showThinkSwitch().then((thinks) => {
      // A model that cannot think drops the chat's thinking setting with the change (the server refuses the pair).
      const kept = state.settings?.think
      if (state.settings) void save({ model: ui.model.value || null, ...(!thinks && kept !== null && kept !== false ? { think: null } : {}) })
    })
  })
  ui.think.addEventListener('change', () => {
    if (state.settings) void save({ think: turnChoice().think ?? null })
  })
  ui.settings.addEventListener('click', () => {
    const settings = state.settings
    if (!settings) return
    ui.settingsSystem.value = settings.system ?? ''
    ui.settingsTemperature.value = settings.options.temperature === undefined ? '' : String(settings.options.temperature)
    ui.settingsContext.value = settings.options.num_ctx === undefined ? '' : String(settings.options.num_ctx)
    ui.settingsThink.value = settings.think === null ? '' : String(settings.think)
    ui.settingsDialog.returnValue = ''
    ui.settingsDialog.showModal()
  })
  ui.settingsDialog.addEventListener('close', () => {
    const settings = state.settings
    if (ui.settingsDialog.returnValue !== 'ok' || !settings) return
    const { temperature: _, num_ctx: __, ...otherOptions } = settings.options
    const temperature = numberOf(ui.settingsTemperature)
    const numCtx = numberOf(ui.settingsContext)
    void save({
      system: ui.settingsSystem.value.trim() || null,
      options: { ...otherOptions, ...(temperature === undefined ? {} : { temperature }), ...(numCtx === undefined ? {} : { num_ctx: numCtx }) },
      think: thinkOf(ui.settingsThink.value),
    }).then(() => showSettings(state.settings))
  })
}
