import { lookup } from 'node:dns/promises'
import { abortable } from '../../shared/abortable.ts'
import type { IncomingMessage } from 'node:http'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP, isIPv6, type LookupFunction } from 'node:net'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import type { Readable } from 'node:stream'
import { isPublicAddress } from './public-address.ts'

/**
 * GET of a page for `fetch_url` (docs/builtin-tools.md "Security"): http(s) only; before each
 * connection (the first and each of at most 5 redirects) the host is resolved and every address it
 * has is checked, and the connection goes to those checked addresses (a second resolution could
 * answer otherwise); at most `maxBytes` read, decompressed included.
 */

export const MAX_REDIRECTS = 5

export type PageKind = 'html' | 'pdf' | 'text'

export interface FetchedPage {
  /** Where the page was found, after redirects. */
  url: string
  kind: PageKind
  /** The charset the server named, if any. */
  charset: string | undefined
  body: Buffer
  /** The body went past `maxBytes`: only its start was read. */
  cut: boolean
}

export interface FetchRules {
  /** Host names (or IP literals) fetched whatever their addresses. */
  allowedHosts: readonly string[]
  maxBytes: number
  userAgent: string
}

/** Why a page was not fetched, told to the model as the call's result. */
export class FetchRefused extends Error {
  override name = 'FetchRefused'
}

const KINDS: Array<[RegExp, PageKind]> = [
  [/^(text\/html|application\/xhtml\+xml)$/, 'html'],
  [/^application\/pdf$/, 'pdf'],
  [/^(text\/[\w.+-]+|application\/(json|xml|[\w.-]+\+(json|xml)))$/, 'text'],
]

export async function fetchChecked(address: string, rules: FetchRules, signal: AbortSignal): Promise<FetchedPage> {
  let url = parseUrl(address)
  for (let redirects = 0; ; redirects++) {
    const addresses = await checkedAddresses(url, rules, signal)
    const response = await get(url, addresses, rules, signal)
    const status = response.statusCode ?? 0
    if (status >= 300 && status < 400 && response.headers.location) {
      response.destroy()
      if (redirects === MAX_REDIRECTS) throw new FetchRefused(`${url.href} redirects more than ${MAX_REDIRECTS} times.`)
      url = parseUrl(new URL(response.headers.location, url).href)
      continue
    }
    if (status < 200 || status >= 300) {
      response.destroy()
      throw new FetchRefused(`${url.href} answered HTTP ${status}.`)
    }
    const [mediaType, ...parameters] = (response.headers['content-type'] ?? 'application/octet-stream').split(';').map((part) => part.trim().toLowerCase())
    const kind = KINDS.find(([pattern]) => pattern.test(mediaType!))?.[1]
    if (!kind) {
      response.destroy()
      throw new FetchRefused(`${url.href} is ${mediaType}, which fetch_url does not read (HTML, PDF and text only).`)
    }
    const charset = parameters.find((parameter) => parameter.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '')
    const { body, cut } = await readBounded(decoded(response), rules.maxBytes, signal)
    if (cut && kind === 'pdf') throw new FetchRefused(`${url.href} is a PDF larger than FETCH_MAX_BYTES (${rules.maxBytes} bytes).`)
    return { url: url.href, kind, charset, body, cut }
  }
}

function parseUrl(address: string): URL {
  if (!URL.canParse(address)) throw new FetchRefused(`${JSON.stringify(address.slice(0, 200))} is not a URL.`)
  const url = new URL(address)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchRefused(`${url.protocol} URLs are not fetched: http and https only.`)
  if (url.username || url.password) throw new FetchRefused('URLs with credentials in them are not fetched.')
  return url
}

/**
 * The addresses `url`'s host has, every one checked: a name that resolves to one private address
 * among public ones is refused too. WHATWG URL parsing has already turned odd IPv4 forms
 * (2130706433, 0x7f.1, 017700000001) into dotted ones.
 */
async function checkedAddresses(url: URL, rules: FetchRules, signal: AbortSignal): Promise<string[]> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  let addresses: string[]
  if (isIP(host)) addresses = [host]
  else {
    try {
      const found = await abortable(lookup(host, { all: true, verbatim: true }), signal)
      addresses = found.map((entry) => entry.address)
    } catch (error) {
      if (signal.aborted) throw error
      throw new FetchRefused(`${host} could not be resolved (${(error as NodeJS.ErrnoException).code ?? 'no address'}).`)
    }
  }
  if (rules.allowedHosts.includes(host)) return addresses
  const refused = addresses.find((address) => !isPublicAddress(address))
  if (refused !== undefined) {
    const named = refused === host ? host : `${host} (${refused})`
    throw new FetchRefused(`${named} is not a public address: loopback, private, link-local, shared and metadata addresses are not fetched unless FETCH_ALLOWED_HOSTS names the host.`)
  }
  return addresses
}

function get(url: URL, addresses: string[], rules: FetchRules, signal: AbortSignal): Promise<IncomingMessage> {
  // The connection goes to the checked addresses only, whatever the resolver would answer now.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    const entries = addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }))
    if (options.all) (callback as unknown as (error: null, entries: Array<{ address: string; family: number }>) => void)(null, entries)
    else callback(null, entries[0]!.address, entries[0]!.family)
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const outgoing = request(url, {
      method: 'GET',
      lookup: pinned,
      agent: false,
      signal,
      headers: {
        'user-agent': rules.userAgent,
        accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.8,text/*;q=0.7',
        'accept-encoding': 'gzip, deflate, br',
      },
    }, resolve)
    // Any later error (the body cut mid-way) is the body reader's to see; this settles the answer only.
    outgoing.on('error', (error) => reject(signal.aborted ? signal.reason : new FetchRefused(`${url.href} could not be fetched: ${error.message}.`)))
    outgoing.end()
  })
}

/** The body as sent before its content coding (gzip, deflate, br); any other coding is refused. */
function decoded(response: IncomingMessage): Readable {
  const coding = (response.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  const decoder = coding === 'gzip' || coding === 'x-gzip' ? createGunzip() : coding === 'deflate' ? createInflate() : coding === 'br' ? createBrotliDecompress() : coding === 'identity' ? null : undefined
  if (decoder === undefined) {
    response.destroy()
    throw new FetchRefused(`the page is sent with the content coding ${coding}, which fetch_url does not read.`)
  }
  if (decoder === null) return response
  response.once('error', (error) => decoder.destroy(error))
  return response.pipe(decoder)
}

/** At most `maxBytes` of `stream`; the rest is not read. */
async function readBounded(stream: Readable, maxBytes: number, signal: AbortSignal): Promise<{ body: Buffer; cut: boolean }> {
  const parts: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of stream.iterator({ destroyOnReturn: true }) as AsyncIterable<Buffer>) {
      signal.throwIfAborted()
      parts.push(chunk)
      size += chunk.byteLength
      if (size >= maxBytes) return { body: Buffer.concat(parts).subarray(0, maxBytes), cut: size > maxBytes }
    }
  } catch (error) {
    if (signal.aborted) throw signal.reason
    throw new FetchRefused(`the page could not be read whole: ${(error as Error).message}.`)
  }
  return { body: Buffer.concat(parts), cut: false }
}
