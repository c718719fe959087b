import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** API keys: a recognisable prefix and 32 random bytes; shown once, stored only as a hash. */
export const API_KEY_PREFIX = 'cko_'
const API_KEY = /^cko_[A-Za-z0-9_-]{43}$/

export function newApiKey(): { key: string; hash: string } {
  const key = API_KEY_PREFIX + randomBytes(32).toString('base64url')
  return { key, hash: hashSecret(key) }
}

/** A public id for a key or a user: safe to print, log and show. */
export function newPublicId(prefix: 'key' | 'usr'): string {
  return `${prefix}_${randomBytes(9).toString('base64url')}`
}

/** The opaque token of a page sign-in (the cookie's value). */
export function newCookieToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashSecret(token) }
}

/** SHA-256 is right for secrets with 256 bits of entropy: nothing to slow down a guess of. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

export function looksLikeApiKey(text: string): boolean {
  return API_KEY.test(text)
}

/** Compares two hashes without leaking where they differ. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex')
  const right = Buffer.from(b, 'hex')
  return left.length === right.length && timingSafeEqual(left, right)
}
