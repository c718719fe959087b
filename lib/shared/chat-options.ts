// What a chat asks of the model, beside its messages: shared by the API, the store (a session's
// settings) and the Ollama client, so that none of them imports another for it.

/** Whether a reasoning model thinks before it answers, or how hard (docs/api.md "Reasoning"). */
export type Think = boolean | 'low' | 'medium' | 'high'

/**
 * The options a chat request of this API may set (docs/api.md "POST /v1/chat"), in OpenAI's
 * names where they differ from Ollama's (`max_tokens`).
 */
export interface ChatOptions {
  temperature?: number
  max_tokens?: number
  top_p?: number
  top_k?: number
  seed?: number
  stop?: string[]
  num_ctx?: number
}
