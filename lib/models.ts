/** Ollama's reading of a model name: without a tag it means `:latest`. */
export function normalizeModelName(name: string): string {
  const lastSegment = name.slice(name.lastIndexOf('/') + 1)
  return lastSegment.includes(':') ? name : `${name}:latest`
}

/** Whether `model` may be used under ALLOWED_MODELS (an empty list allows every model). */
export function isModelAllowed(model: string, allowedModels: readonly string[]): boolean {
  return allowedModels.length === 0 || allowedModels.includes(normalizeModelName(model))
}
