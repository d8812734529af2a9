// Reconnect delays: exponential backoff with full jitter (AWS architecture blog, "Exponential
// Backoff And Jitter"), so that agents cut off together do not all come back in the same instant.

export interface BackoffOptions {
  /** Ceiling of the first delay; doubles per attempt. Default 1000 ms. */
  initialDelayMs?: number;
  /** Largest ceiling. Default 30000 ms. */
  maxDelayMs?: number;
  /** Source of randomness in [0, 1); replaceable in tests. Default Math.random. */
  random?: () => number;
}

/** The delay before reconnect attempt `attempt` (1 for the first): uniform in [0, ceiling). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  const random = options.random ?? Math.random;
  // Capping the exponent keeps 2 ** n finite however long the server stays away.
  const ceiling = Math.min(max, initial * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.floor(random() * ceiling);
}
