// What every part of the page shares: its elements, the state of the open chat, the error line.

export interface Session { id: string; title: string; updated_at: string; message_count: number; pinned: boolean; archived: boolean; folder: string | null }
/** What a chat keeps for its turns (docs/api.md "Chat settings"), and its system prompt. */
export interface ChatSettings { model: string | null; options: { temperature?: number; num_ctx?: number } & Record<string, unknown>; think: boolean | string | null; system?: string | null; files?: string[]; collections?: string[] }
/** A chunk of a document a reply was given (docs/documents.md), numbered as the reply cites it. */
export type Source = FileSource | WebSource
/** A document's chunk a reply was given (docs/documents.md). */
export interface FileSource { n: number; file_id: string; filename: string; page: number | null; heading: string | null; snippet: string }
/** A web page a built-in tool gave a reply (docs/builtin-tools.md). */
export interface WebSource { n: number; url: string; title: string; snippet: string }
/** Where the history the model is sent begins (GET /v1/sessions/{id}). */
export interface ContextCut { first_sent_message_id: string; summarized: boolean }
/** A call the model made of a tool (docs/tools.md). */
export interface ToolCall { call_id: string; name: string; arguments: Record<string, unknown> }
export interface Message {
  id: string
  role: 'system' | 'user' | 'assistant' | 'tool'
  content: string
  status: string
  model?: string
  /** A reasoning model's thinking, kept apart from the text, and how long it took (docs/api.md "Reasoning"). */
  thinking?: string
  thinking_ms?: number
  /** Ollama's speed for this reply. */
  tokens_per_second?: number
  /** The messages with the same parent (other tries, other edits), itself included, oldest first. */
  sibling_ids?: string[]
  /** The images it shows: stored ones (their `/v1/attachments/…` URL), or data URLs while not yet sent. */
  images?: Array<{ url: string; width?: number; height?: number }>
  /** The calls an assistant message made; a tool message's call. */
  tool_calls?: ToolCall[]
  call_id?: string
  /** The calls a paused reply waits on. */
  approval_required?: ToolCall[]
  /** The documents' chunks a reply answered from. */
  sources?: Source[]
  /** A reply's thumbs up or down. */
  rating?: 'up' | 'down'
  /** Why a finished reply ended (`length`: cut at its token limit). */
  done_reason?: string | null
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
export const ui = {
  banner: $<HTMLDivElement>('banner'),
  jumpLatest: $<HTMLButtonElement>('jump-latest'),
  chatMenu: $<HTMLButtonElement>('chat-menu'),
  chatActions: $<HTMLDivElement>('chat-actions'),
  moreActions: $<HTMLButtonElement>('more-actions'),
  chatMore: $<HTMLDivElement>('chat-more'),
  modelNote: $<HTMLParagraphElement>('model-note'),
  shortcutsDialog: $<HTMLDialogElement>('shortcuts-dialog'),
  preferences: $<HTMLButtonElement>('preferences'),
  promptMenu: $<HTMLUListElement>('prompt-menu'),
  share: $<HTMLButtonElement>('share'),
  shareDialog: $<HTMLDialogElement>('share-dialog'),
  shareCreate: $<HTMLButtonElement>('share-create'),
  shareCreated: $<HTMLDivElement>('share-created'),
  shareUrl: $<HTMLInputElement>('share-url'),
  shareCopy: $<HTMLButtonElement>('share-copy'),
  shareList: $<HTMLUListElement>('share-list'),
  shareNone: $<HTMLParagraphElement>('share-none'),
  managePrompts: $<HTMLButtonElement>('manage-prompts'),
  promptsDialog: $<HTMLDialogElement>('prompts-dialog'),
  promptsList: $<HTMLUListElement>('prompts-list'),
  promptsEmpty: $<HTMLParagraphElement>('prompts-empty'),
  promptForm: $<HTMLFormElement>('prompt-form'),
  promptTitle: $<HTMLInputElement>('prompt-title'),
  promptContent: $<HTMLTextAreaElement>('prompt-content'),
  promptSave: $<HTMLButtonElement>('prompt-save'),
  promptsError: $<HTMLParagraphElement>('prompts-error'),
  preferencesDialog: $<HTMLDialogElement>('preferences-dialog'),
  preferTheme: $<HTMLSelectElement>('prefer-theme'),
  preferSendWith: $<HTMLSelectElement>('prefer-send-with'),
  preferTextSize: $<HTMLSelectElement>('prefer-text-size'),
  sessionList: $<HTMLUListElement>('session-list'),
  search: $<HTMLInputElement>('search'),
  searchResults: $<HTMLUListElement>('search-results'),
  sessionMore: $<HTMLParagraphElement>('session-more'),
  showArchived: $<HTMLButtonElement>('show-archived'),
  pin: $<HTMLButtonElement>('pin'),
  archive: $<HTMLButtonElement>('archive'),
  moveFolder: $<HTMLButtonElement>('move-folder'),
  folderDialog: $<HTMLDialogElement>('folder-dialog'),
  folderInput: $<HTMLInputElement>('folder-input'),
  folderNames: $<HTMLDataListElement>('folder-names'),
  toggleSidebar: $<HTMLButtonElement>('toggle-sidebar'),
  newChat: $<HTMLButtonElement>('new-chat'),
  title: $<HTMLHeadingElement>('chat-title'),
  model: $<HTMLSelectElement>('model'),
  rename: $<HTMLButtonElement>('rename'),
  exportJson: $<HTMLAnchorElement>('export-json'),
  exportMarkdown: $<HTMLAnchorElement>('export-markdown'),
  importFile: $<HTMLInputElement>('import-file'),
  importResult: $<HTMLParagraphElement>('import-result'),
  remove: $<HTMLButtonElement>('delete'),
  systemRow: $<HTMLDivElement>('system-row'),
  system: $<HTMLTextAreaElement>('system'),
  messages: $<HTMLOListElement>('messages'),
  emptyState: $<HTMLElement>('empty-state'),
  temporarySwitch: $<HTMLLabelElement>('temporary-switch'),
  temporary: $<HTMLInputElement>('temporary'),
  temporaryNote: $<HTMLParagraphElement>('temporary-note'),
  error: $<HTMLParagraphElement>('error'),
  composer: $<HTMLFormElement>('composer'),
  input: $<HTMLTextAreaElement>('input'),
  attachments: $<HTMLUListElement>('attachments'),
  attach: $<HTMLInputElement>('attach'),
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
  toolsSwitch: $<HTMLLabelElement>('tools-switch'),
  toolSignIn: $<HTMLDivElement>('tool-sign-in'),
  useTools: $<HTMLInputElement>('use-tools'),
  thinkSwitch: $<HTMLLabelElement>('think-switch'),
  think: $<HTMLInputElement>('think'),
  settings: $<HTMLButtonElement>('settings'),
  documents: $<HTMLButtonElement>('documents'),
  documentsDialog: $<HTMLDialogElement>('documents-dialog'),
  documentsUpload: $<HTMLInputElement>('documents-upload'),
  documentsDrop: $<HTMLDivElement>('documents-drop'),
  documentsFiles: $<HTMLUListElement>('documents-files'),
  documentsCollections: $<HTMLUListElement>('documents-collections'),
  documentsCollectionName: $<HTMLInputElement>('documents-collection-name'),
  documentsCollectionCreate: $<HTMLButtonElement>('documents-collection-create'),
  documentsStatus: $<HTMLParagraphElement>('documents-status'),
  documentsChip: $<HTMLParagraphElement>('documents-chip'),
  settingsDialog: $<HTMLDialogElement>('settings-dialog'),
  settingsSystem: $<HTMLTextAreaElement>('settings-system'),
  settingsTemperature: $<HTMLInputElement>('settings-temperature'),
  settingsContext: $<HTMLInputElement>('settings-context'),
  settingsThink: $<HTMLSelectElement>('settings-think'),
  renameDialog: $<HTMLDialogElement>('rename-dialog'),
  renameInput: $<HTMLInputElement>('rename-input'),
  deleteDialog: $<HTMLDialogElement>('delete-dialog'),
  layout: $<HTMLDivElement>('layout'),
  account: $<HTMLDivElement>('account'),
  signedInAs: $<HTMLElement>('signed-in-as'),
  signOut: $<HTMLButtonElement>('sign-out'),
  signIn: $<HTMLElement>('sign-in'),
  signInForm: $<HTMLFormElement>('sign-in-form'),
  apiKey: $<HTMLInputElement>('api-key'),
  signInError: $<HTMLParagraphElement>('sign-in-error'),
}

export const state = {
  sessionId: null as string | null,
  sessions: [] as Session[],
  cursor: null as string | null | undefined,
  loadingSessions: false,
  /** The sidebar lists the archived chats instead. */
  archivedView: false,
  /** Where the open chat is listed (pinned, archived, its folder). */
  organised: null as Pick<Session, 'pinned' | 'archived' | 'folder'> | null,
  streaming: null as { sessionId: string; abort: AbortController } | null,
  /** DEFAULT_MODEL, what the picker's "Default" stands for. */
  defaultModel: '',
  /** The open chat's settings, as stored. */
  settings: null as ChatSettings | null,
  /** Whether the user is an admin (who may sign the server in to MCP servers). */
  isAdmin: false,
}

export function showError(text: string | null): void {
  ui.error.hidden = !text
  ui.error.textContent = text ?? ''
}

/** A message's images as thumbnails; a click opens the image itself in a new tab. */
export function imageThumbnails(images: NonNullable<Message['images']>): HTMLDivElement {
  const list = document.createElement('div')
  list.className = 'images'
  for (const [index, image] of images.entries()) {
    const link = document.createElement('a')
    link.href = image.url
    link.target = '_blank'
    link.rel = 'noopener noreferrer'
    const thumbnail = document.createElement('img')
    thumbnail.className = 'thumbnail'
    thumbnail.src = image.url
    thumbnail.alt = `Image ${index + 1}${image.width ? ` (${image.width}×${image.height})` : ''}`
    thumbnail.loading = 'lazy'
    if (image.width && image.height) {
      thumbnail.width = image.width
      thumbnail.height = image.height
    }
    link.append(thumbnail)
    list.append(link)
  }
  return list
}
