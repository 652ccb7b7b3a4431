// Capped exponential backoff with jitter: one rule for MQTT reconnects, SDK stream re-opens and webhook retries.

export interface BackoffPolicy {
  /** Delay before the first retry (attempt 0), in milliseconds. */
  initialMs: number;
  /** Cap on any delay, in milliseconds (jitter never exceeds it). */
  maxMs: number;
  /** Growth per attempt (2 doubles). */
  multiplier: number;
  /** Random spread as a fraction of the nominal delay, in [0, 1): 0.2 gives +-20 %; 0 makes delays deterministic. */
  jitter: number;
}

/**
 * Delay before retry `attempt` (0-based): `min(maxMs, initialMs * multiplier^attempt)`, spread by +-jitter, capped at
 * maxMs and at least 1 ms. `random` returns values in [0, 1) (injectable for tests).
 */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const nominal = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** attempt);
  // Without jitter no random number is drawn, so a deterministic caller stays deterministic.
  const spread = policy.jitter > 0 ? 1 + policy.jitter * (2 * random() - 1) : 1;
  return Math.max(1, Math.min(policy.maxMs, Math.round(nominal * spread)));
}
