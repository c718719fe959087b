const DEFAULT_PORT = { 'http:': '80', 'https:': '443' } as const

/**
 * Reads OLLAMA_HOST the way Ollama itself does: `ollama:11434`, `ollama` and `:11434` get `http://`
 * and port 11434; `http://host` means port 80 and `https://host` port 443; a path is kept.
 * Returns the base URL without a trailing slash, or undefined when the value is not a host.
 */
export function parseOllamaHost(value: string): string | undefined {
  const text = value.trim().replace(/^(["'])(.*)\1$/, '$2')
  const hasScheme = text.includes('://')
  // `new URL('ollama:11434')` would read `ollama:` as a scheme, hence the explicit prefix.
  let url: URL
  try {
    url = new URL(hasScheme ? text : `http://${text.startsWith(':') ? `127.0.0.1${text}` : text || '127.0.0.1'}`)
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  if (url.search || url.hash || !url.hostname) return undefined
  // URL drops a port equal to the scheme's default, so look at what was written.
  const authority = (hasScheme ? text.slice(text.indexOf('://') + 3) : text).split('/')[0]!
  const portWritten = /:\d+$/.test(authority)
  const port = url.port || (hasScheme || portWritten ? DEFAULT_PORT[url.protocol] : '11434')
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : ''
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.protocol}//${auth}${url.hostname}:${port}${path}`
}

/** A URL (or any text holding one) with the password of `user:password@` replaced by `***`, for logs and messages. */
export function maskCredentials(text: string): string {
  return text.replace(/(\/\/[^/@:\s]*):[^/@\s]*@/g, '$1:***@')
}
