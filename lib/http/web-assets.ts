import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'

/** Set by build.mjs: the page's files by URL path, so the bundles serve it without a dist/web folder. */
declare const __EMBEDDED_WEB__: Record<string, string> | undefined

export interface WebAsset {
  body: string
  contentType: string
  etag: string
  /** Content-hashed names never change, so they may be cached for ever. */
  immutable: boolean
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  // The icon is an SVG, served at the path browsers ask for.
  ico: 'image/svg+xml',
}

let assets: Map<string, WebAsset> | undefined

/** The page's files: embedded in a bundle, else from dist/web (`npm run build`; `npm start` builds first). */
export function webAssets(): Map<string, WebAsset> {
  assets ??= new Map(Object.entries(typeof __EMBEDDED_WEB__ === 'undefined' ? readBuiltFiles() : __EMBEDDED_WEB__).map(([path, body]) => [path, toAsset(path, body)]))
  return assets
}

function readBuiltFiles(): Record<string, string> {
  const folder = new URL('../../dist/web/', import.meta.url)
  if (!existsSync(new URL('index.html', folder))) return {}
  const files: Record<string, string> = {
    '/': readFileSync(new URL('index.html', folder), 'utf8'),
    '/favicon.ico': readFileSync(new URL('favicon.svg', folder), 'utf8'),
  }
  for (const file of readdirSync(new URL('assets/', folder))) files[`/assets/${file}`] = readFileSync(new URL(`assets/${file}`, folder), 'utf8')
  return files
}

function toAsset(path: string, body: string): WebAsset {
  const extension = path === '/' ? 'html' : path.slice(path.lastIndexOf('.') + 1)
  return {
    body,
    contentType: TYPES[extension] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    immutable: path.startsWith('/assets/'),
  }
}
