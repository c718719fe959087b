import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'

/**
 * Secrets kept in the database encrypted (AES-256-GCM) with a key from the environment: each
 * value with its own random nonce, bound to what it belongs to (`context`, authenticated but not
 * stored), so that a value copied onto another row does not open.
 */

const VERSION = 'v1'

/** `value` as JSON, encrypted: `v1.<nonce>.<ciphertext>.<tag>` in base64url. */
export function seal(key: Buffer, context: string, value: unknown): string {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(Buffer.from(context))
  const text = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()])
  return [VERSION, nonce, text, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.')
}

/** What `seal` sealed under `key` and `context`; undefined when it does not open with them (another key, another row, altered). */
export function unseal<T>(key: Buffer, context: string, sealed: string): T | undefined {
  const [version, nonce, text, tag] = sealed.split('.')
  if (version !== VERSION || nonce === undefined || text === undefined || tag === undefined || Buffer.from(tag, 'base64url').length !== 16) return undefined
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(nonce, 'base64url'))
    decipher.setAAD(Buffer.from(context))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return JSON.parse(Buffer.concat([decipher.update(Buffer.from(text, 'base64url')), decipher.final()]).toString('utf8')) as T
  } catch {
    return undefined
  }
}
