import { isIP } from 'node:net'
import { hostname } from 'node:os'

/** Whether the server listens on a loopback address only (the laptop case). */
export function isLoopbackBind(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/**
 * Whether a request's Host may reach a server listening on loopback: an IP literal, `localhost`,
 * a `*.localhost` name, this machine's own name, or one of `allowedHosts`. Any other name means a
 * page of another site reached us through DNS rebinding (what Ollama itself refuses on loopback).
 */
export function isAllowedHost(hostHeader: string, allowedHosts: readonly string[]): boolean {
  const name = hostName(hostHeader)
  if (name === undefined) return false
  if (isIP(name) !== 0) return true
  if (name === 'localhost' || name.endsWith('.localhost')) return true
  return name === hostname().toLowerCase() || allowedHosts.includes(name)
}

/** The name in a Host header without its port; undefined for one that is not a host. */
function hostName(hostHeader: string): string | undefined {
  const header = hostHeader.trim().toLowerCase()
  const bracketed = /^\[([\da-f:.]+)\](?::\d{1,5})?$/.exec(header)
  if (bracketed) return bracketed[1]
  const plain = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(header)
  return plain?.[1]?.replace(/\.$/, '')
}

/**
 * Whether a browser sent `request` from a page of another site that is not listed in
 * `corsOrigins`: `Sec-Fetch-Site: cross-site`, or (from browsers without it) an `Origin` whose
 * host is not the request's. Clients that are not browsers send neither.
 */
export function isCrossSite(request: Request, corsOrigins: readonly string[]): boolean {
  const origin = request.headers.get('origin')
  if (origin !== null && corsOrigins.includes(origin)) return false
  const site = request.headers.get('sec-fetch-site')
  if (site !== null) return site === 'cross-site'
  return origin !== null && originHost(origin) !== (request.headers.get('host') ?? new URL(request.url).host)
}

/** The host of an Origin header; undefined for `null` or anything unreadable. */
export function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host
  } catch {
    return undefined
  }
}
