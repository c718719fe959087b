import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CheckpointClock } from '../lib/generation/checkpoint-clock.ts'

test('checkpoints start early by what recent ones overshot, never before half the interval, and back to the interval once they stop overshooting', () => {
  const clock = new CheckpointClock(1000)
  assert.equal(clock.delayMs(), 1000, 'nothing learnt yet: the interval')

  // A loaded server: each checkpoint commits 200 ms after its timer was due.
  for (let index = 0; index < 40; index++) {
    const delay = clock.delayMs()
    clock.committed(delay, delay + 200)
  }
  const loaded = clock.delayMs()
  assert.ok(loaded > 780 && loaded < 810, `started about 200 ms early: ${loaded} ms`)

  for (let index = 0; index < 40; index++) clock.committed(clock.delayMs(), 3000)
  assert.equal(clock.delayMs(), 500, 'however late they commit, not more often than twice per interval')

  // The load gone: commits land as their timers fire.
  for (let index = 0; index < 60; index++) {
    const delay = clock.delayMs()
    clock.committed(delay, delay)
  }
  assert.ok(clock.delayMs() > 990, `back to the interval: ${clock.delayMs()} ms`)
})

test('an overshoot that varies starts checkpoints earlier than its mean: they commit within the interval', () => {
  const clock = new CheckpointClock(1000)
  // Overshoots of 50 and 250 ms in turn: mean 150, deviation 100.
  const lags: number[] = []
  for (let index = 0; index < 200; index++) {
    const delay = clock.delayMs()
    const lag = delay + (index % 2 ? 250 : 50)
    clock.committed(delay, lag)
    if (index >= 100) lags.push(lag)
  }
  assert.ok(Math.max(...lags) <= 1000, `the latest within the interval: ${Math.max(...lags)} ms`)
  assert.ok(Math.min(...lags) >= 600, `and none far too early: ${Math.min(...lags)} ms`)
})
