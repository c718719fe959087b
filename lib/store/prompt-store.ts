/** A saved prompt of a user's (docs/api.md "Saved prompts"), put into the composer with `/`. */
export interface SavedPrompt {
  id: string
  title: string
  content: string
  created_at: string
  updated_at: string
}

/** What a new prompt is, or what changes in one. */
export interface PromptChange {
  title?: string | undefined
  content?: string | undefined
}

/** Saved prompts, each its owner's alone: another user's id is as absent as a missing one. */
export interface PromptStore {
  /** The owner's prompts by title (then id), at most `limit`. */
  listPrompts(ownerId: string, limit: number): Promise<SavedPrompt[]>
  /** A new prompt; `full` (nothing stored) when the owner has `max` already. */
  createPrompt(ownerId: string, prompt: Required<PromptChange>, max: number): Promise<SavedPrompt | 'full'>
  updatePrompt(id: string, ownerId: string, change: PromptChange): Promise<SavedPrompt | undefined>
  deletePrompt(id: string, ownerId: string): Promise<boolean>
}
