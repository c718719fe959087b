/**
 * The architecture, as the folders show it: the entry points (lib/server.ts, lib/admin.ts) on
 * top; then functions; then what functions are made of (the app context, the function shape); then http/, access/, generation/, images/, tools/, openai/, conversations/ and retries/;
 * then ollama/ and store/; and at the bottom shared/ and observability/, which everything may
 * use. No module imports one of a higher tier (type imports included), no function imports
 * another function, and no module reaches itself through its imports.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { test } from 'node:test'
import { PROJECT_ROOT } from './support/process.ts'

const TIERS: Record<string, number> = {
  'lib/shared': 0,
  'lib/observability': 0,
  'lib/ollama': 1,
  'lib/store': 1,
  'lib/http': 2,
  'lib/access': 2,
  'lib/generation': 2,
  'lib/images': 2,
  'lib/tools': 2,
  'lib/openai': 2,
  'lib/conversations': 2,
  'lib/retries': 2,
  'lib/documents': 2,
  lib: 3,
  functions: 4,
}

/** The one type every tier-2 module is handed by its function: the app context (lib/context.ts). */
const CONTEXT_TYPE = 'lib/context.ts'

const sources = (folder: string): string[] =>
  readdirSync(join(PROJECT_ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(folder, file))

function importsOf(file: string): Array<{ target: string; typeOnly: boolean }> {
  const text = readFileSync(join(PROJECT_ROOT, file), 'utf8')
  return [...text.matchAll(/^import (type )?[^'"]*from '(\.[^']+)'/gm)].map((match) => ({
    target: relative(PROJECT_ROOT, resolve(PROJECT_ROOT, dirname(file), match[2]!)),
    typeOnly: match[1] !== undefined,
  }))
}

/** The entry points mount every function, so they stand above them. */
const ENTRY_POINTS = new Set(['lib/server.ts', 'lib/admin.ts'])

/** A file's tier: its folder's, or that of the nearest folder above it that has one (lib/store/postgres/ is store/). */
function tierOf(file: string): number | undefined {
  if (ENTRY_POINTS.has(file)) return 5
  for (let folder = dirname(file); folder !== '.'; folder = dirname(folder)) {
    // A new folder straight under lib/ must be given its tier here.
    if (folder === 'lib' && dirname(file) !== 'lib') return undefined
    if (TIERS[folder] !== undefined) return TIERS[folder]
  }
  return undefined
}

test('lib/ reads by subsystem: every module is in a known folder, and none imports one above it', () => {
  const files = [...sources('lib'), ...sources('functions')]
  const upward: string[] = []
  for (const file of files) {
    const tier = tierOf(file)
    assert.notEqual(tier, undefined, `${file} is in no known folder`)
    for (const { target, typeOnly } of importsOf(file)) {
      if (target.startsWith('package.json')) continue
      const targetTier = tierOf(target)
      assert.notEqual(targetTier, undefined, `${file} imports ${target}, in no known folder`)
      if (typeOnly && target === CONTEXT_TYPE) continue
      if (targetTier! > tier!) upward.push(`${file} -> ${target}`)
      if (file.startsWith('functions/') && target.startsWith('functions/')) upward.push(`${file} -> ${target} (a function importing another)`)
    }
  }
  assert.deepEqual(upward, [])
})

test('no module reaches itself through its imports, type-only ones included', () => {
  const files = [...sources('lib'), ...sources('functions')]
  const graph = new Map(files.map((file) => [file, importsOf(file).map(({ target }) => target).filter((target) => target.endsWith('.ts'))]))
  // Tarjan's strongly connected components: each component of more than one module is a cycle.
  const order = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const visit = (file: string) => {
    order.set(file, order.size)
    low.set(file, order.get(file)!)
    stack.push(file)
    onStack.add(file)
    for (const target of graph.get(file) ?? []) {
      if (!order.has(target)) {
        visit(target)
        low.set(file, Math.min(low.get(file)!, low.get(target)!))
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, order.get(target)!))
      }
    }
    if (low.get(file) !== order.get(file)) return
    const component: string[] = []
    let member: string
    do {
      member = stack.pop()!
      onStack.delete(member)
      component.push(member)
    } while (member !== file)
    if (component.length > 1) cycles.push(component.sort())
  }
  for (const file of files) if (!order.has(file)) visit(file)
  assert.deepEqual(cycles, [])
})
