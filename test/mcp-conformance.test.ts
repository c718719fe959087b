/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`) drives our MCP client
 * through its client scenarios: each runs test/conformance/client.ts (the whole server, a chat per
 * tool of the scenario's server) and checks what reached its server. Reported per scenario; the
 * README lists which pass. The auth/* scenarios run our OAuth (docs/tools.md "Servers that sign in
 * with OAuth"): the client plays the admin's browser through the sign-in.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { describe, test } from 'node:test'
import { promisify } from 'node:util'
import { PROJECT_ROOT } from './support/process.ts'

const SUITE = join(PROJECT_ROOT, 'node_modules/@modelcontextprotocol/conformance/dist/index.js')
const CLIENT = `${process.execPath} --import ${join(PROJECT_ROOT, 'node_modules/tsx/dist/loader.mjs')} ${join(PROJECT_ROOT, 'test/conformance/client.ts')}`

interface Check {
  id: string
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED'
  errorMessage?: string
}

/** Runs one client scenario; its checks (INFO lines left out). */
async function scenario(name: string): Promise<Check[]> {
  const output = mkdtempSync(join(tmpdir(), 'chat-ollama-conformance-'))
  // The suite exits non-zero when a check fails: the checks say which, so its exit code is not what is asserted.
  await promisify(execFile)(process.execPath, [SUITE, 'client', '--command', CLIENT, '--scenario', name, '-o', output], { cwd: output, timeout: 120_000 }).catch(() => {})
  // Results go to <output>/<name>-<time>/ (auth/x: <output>/auth/x-<time>/).
  const folder = join(output, dirname(name))
  const [run] = readdirSync(folder).filter((entry) => entry.startsWith(`${basename(name)}-`))
  assert.ok(run, `the suite left no results for ${name}`)
  const checks = JSON.parse(readFileSync(join(folder, run, 'checks.json'), 'utf8')) as Check[]
  return checks.filter((check) => check.status !== 'INFO')
}

/**
 * Each scenario that applies, with the checks it must pass. sse-retry's timing check (a reconnect
 * within 500 ms + 200 ms of the server's `retry`) measures wall-clock time: reported, not asserted,
 * so that a loaded machine cannot fail it.
 */
const SCENARIOS: Array<[string, string[], string[]]> = [
  ['initialize', ['mcp-client-initialization'], []],
  ['tools_call', ['tool-add-numbers'], []],
  ['elicitation-sep1034-client-defaults', ['client-elicitation-sep1034-string-default', 'client-elicitation-sep1034-integer-default', 'client-elicitation-sep1034-number-default', 'client-elicitation-sep1034-enum-default', 'client-elicitation-sep1034-boolean-default'], []],
  ['sse-retry', ['client-sse-graceful-reconnect', 'client-sse-last-event-id'], ['client-sse-retry-timing']],
]

/**
 * The auth/* scenarios that apply, each passed whole (every check SUCCESS, and more than a few of
 * them). Left out: auth/2025-03-26-oauth-metadata-backcompat, whose metadata names an issuer that
 * is not its own address (the SDK refuses it, RFC 8414 §3.3), and auth/client-credentials-jwt
 * (private_key_jwt is not supported); auth/basic-cimd's warning (no client ID metadata document:
 * that needs an https address of ours) is reported.
 */
const AUTH_SCENARIOS: Array<[string, string[]]> = [
  ['auth/metadata-default', []], ['auth/metadata-var1', []], ['auth/metadata-var2', []], ['auth/metadata-var3', []],
  ['auth/basic-cimd', ['cimd-client-id-used']],
  ['auth/scope-from-www-authenticate', []], ['auth/scope-from-scopes-supported', []], ['auth/scope-omitted-when-undefined', []],
  ['auth/scope-step-up', []], ['auth/scope-retry-limit', []],
  ['auth/token-endpoint-auth-basic', []], ['auth/token-endpoint-auth-post', []], ['auth/token-endpoint-auth-none', []],
  ['auth/pre-registration', []], ['auth/2025-03-26-oauth-endpoint-fallback', []], ['auth/resource-mismatch', []],
  ['auth/offline-access-scope', []], ['auth/offline-access-not-supported', []], ['auth/client-credentials-basic', []],
]

describe('MCP conformance, auth client scenarios', { concurrency: 2 }, () => {
  for (const [name, reported] of AUTH_SCENARIOS) {
    test(`${name}: every check passes`, async (t) => {
      const checks = await scenario(name)
      for (const id of reported) t.diagnostic(`${id}: ${checks.find((each) => each.id === id)?.status ?? 'missing'}`)
      const notPassed = checks.filter((check) => check.status !== 'SUCCESS' && !reported.includes(check.id))
      assert.deepEqual(notPassed.map((check) => `${check.id}: ${check.status} ${check.errorMessage ?? ''}`), [])
      assert.ok(checks.filter((check) => check.status === 'SUCCESS').length >= 3, `${checks.length} checks`)
    })
  }
})

for (const [name, required, reported] of SCENARIOS) {
  test(`MCP conformance, client scenario ${name}: ${required.join(', ')} pass`, async (t) => {
    const checks = await scenario(name)
    for (const id of required) {
      const check = checks.find((each) => each.id === id)
      assert.equal(check?.status, 'SUCCESS', `${id}: ${check?.status ?? 'missing'} ${check?.errorMessage ?? ''}`)
    }
    for (const id of reported) t.diagnostic(`${id}: ${checks.find((each) => each.id === id)?.status ?? 'missing'}`)
    const others = checks.filter((check) => !required.includes(check.id) && !reported.includes(check.id) && check.status === 'FAILURE')
    assert.deepEqual(others.map((check) => `${check.id}: ${check.errorMessage}`), [])
  })
}
