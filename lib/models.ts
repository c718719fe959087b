/** Ollama's reading of a model name: without a tag it means `:latest`. */
export function normalizeModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf('/') + 1)
  return lastSegment.includes(':') ? name : `${name}:latest`
}

/** Whether `model` may be used under ALLOWED_MODELS (an empty list allows every model). */
export function isModelAllowed(model: string, allowedModels: readonly string[]): boolean {
  return allowedModels.length === 0 || allowedModels.includes(normalizeModelName(model))
}

/**
 * A model name in the form Ollama lists it (`/api/tags`): lower-case, without the default
 * registry and namespace, with `:latest` when no tag is given. `Llama3.2`,
 * `library/llama3.2` and `registry.ollama.ai/library/llama3.2:latest` all name `llama3.2:latest`.
 */
export function canonicalModelName(name: string): string {
  const shortened = name.trim().toLowerCase().replace(/^registry\.ollama\.ai\//, '').replace(/^library\//, '')
  return normalizeModelName(shortened)
}
