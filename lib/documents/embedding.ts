import type { OllamaPool } from '../ollama/pool.ts'
import { HttpProblem } from '../shared/problem.ts'

/** Texts sent to Ollama in one /api/embed call: enough to keep it busy, few enough to fail little at a time. */
export const EMBED_BATCH = 32

/**
 * Embeddings of `texts` by `model` through the Ollama pool, EMBED_BATCH at a time, as float32
 * vectors in the order of `texts`. A model that cannot embed is 400 `model_capability`; each
 * call is bounded by `timeoutMs` and by `signal`.
 */
export async function embedTexts(ollama: OllamaPool, model: string, texts: string[], { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<{ vectors: Float32Array[]; promptTokens: number }> {
  await ollama.requireCapability(model, 'embedding', 'embed text (EMBED_MODEL must name an embedding model such as nomic-embed-text: ollama pull nomic-embed-text)')
  const vectors: Float32Array[] = []
  let promptTokens = 0
  for (let from = 0; from < texts.length; from += EMBED_BATCH) {
    const batch = texts.slice(from, from + EMBED_BATCH)
    const answer = await ollama.embed(model, batch, { timeoutMs, signal })
    if (answer.embeddings.length !== batch.length) {
      throw new HttpProblem(502, 'ollama', `Ollama gave ${answer.embeddings.length} embeddings for ${batch.length} texts.`)
    }
    for (const embedding of answer.embeddings) {
      const size = vectors[0]?.length ?? embedding.length
      if (embedding.length === 0 || embedding.length !== size || !embedding.every(Number.isFinite)) {
        throw new HttpProblem(502, 'ollama', `Ollama gave an embedding of ${embedding.length} numbers where ${size} finite ones were expected.`)
      }
      vectors.push(Float32Array.from(embedding))
    }
    promptTokens += answer.promptTokens
  }
  return { vectors, promptTokens }
}
