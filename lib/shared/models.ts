/**
 * A model name in the form Ollama lists it (`/api/tags`): lower-case, without the default
 * registry and namespace, with `:latest` when no tag is given. `Llama3.2`, `library/llama3.2`
 * and `registry.ollama.ai/library/llama3.2:latest` all name `llama3.2:latest`. Every comparison
 * of model names in this service (ALLOWED_MODELS, the model check, /v1/models) goes through it.
 */
export function canonicalModelName(name: string): string {
  const shortened = name.trim().toLowerCase().replace(/^registry\.ollama\.ai\//, '').replace(/^library\//, '')
  const lastSegment = shortened.slice(shortened.lastIndexOf('/') + 1)
  return lastSegment.includes(':') ? shortened : `${shortened}:latest`
}

/** Whether `model` may be used under ALLOWED_MODELS (canonical names; an empty list allows every model). */
export function isModelAllowed(model: string, allowedModels: readonly string[]): boolean {
  return allowedModels.length === 0 || allowedModels.includes(canonicalModelName(model))
}
