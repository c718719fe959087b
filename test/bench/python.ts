/**
 * run_python's cost (docs/builtin-tools.md): an interpreter's start-up (Pyodide loaded and shut
 * in, in a worker thread), and a call side by side when an interpreter waits in the pool (warm)
 * and when none does (cold: the call starts one), with the pool a call leaves behind.
 * Run alone: `node --import tsx test/bench/python.ts [--rounds 5]`.
 */
import { parseArgs } from 'node:util'
import { PythonPool } from '../../lib/tools/builtin/python/python-pool.ts'
import { silentLogger } from '../../lib/observability/log.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } })
const rounds = Number(values.rounds)
const PROGRAM = 'sum(i * i for i in range(100_000))'
const limits = { size: 1, memoryBytes: 256 * 1024 ** 2, maxOutputBytes: 16_384, log: silentLogger }
const never = new AbortController().signal

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const cold: number[] = []
const warm: number[] = []
const run: number[] = []
for (let round = 0; round < rounds; round++) {
  // Cold: a call with no interpreter started yet pays the start-up.
  const pool = new PythonPool(limits)
  const coldStart = performance.now()
  await pool.run(PROGRAM, never, 30_000)
  cold.push(performance.now() - coldStart)
  // Warm: the interpreter started in its place has had time to get ready.
  await new Promise((resolve) => setTimeout(resolve, 8_000))
  const warmStart = performance.now()
  const outcome = await pool.run(PROGRAM, never, 30_000)
  warm.push(performance.now() - warmStart)
  if (outcome.value !== '333328333350000') throw new Error(`unexpected value ${outcome.value}`)
  const quick = performance.now()
  await pool.run('1', never, 30_000)
  run.push(performance.now() - quick)
  await pool.close()
}
console.log(`run_python over ${rounds} rounds (median ms)`)
console.log(`  cold call (start-up + program):   ${median(cold).toFixed(0)}`)
console.log(`  warm call (program, ${PROGRAM}): ${median(warm).toFixed(0)}`)
console.log(`  next call at once (interpreter not ready yet): ${median(run).toFixed(0)}`)
