let lastMs = 0

/**
 * Now as RFC 3339 UTC with milliseconds. It never goes backwards within a process, so rows
 * written later never sort earlier when the wall clock is stepped back.
 */
export function timestamp(): string {
  lastMs = Math.max(Date.now(), lastMs)
  return new Date(lastMs).toISOString()
}
