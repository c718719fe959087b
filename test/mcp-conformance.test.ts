/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`) drives our MCP client
 * through its client scenarios: each runs test/conformance/client.ts (the whole server, a chat per
 * tool of the scenario's server) and checks what reached its server. Reported per scenario; the
 * README lists which pass. The auth/* scenarios need OAuth, not built yet (docs/tools.md).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
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
  const [run] = readdirSync(output).filter((entry) => entry.startsWith(name.replaceAll('/', '-')) || entry.startsWith(name))
  assert.ok(run, `the suite left no results for ${name}`)
  const checks = JSON.parse(readFileSync(join(output, run, 'checks.json'), 'utf8')) as Check[]
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
