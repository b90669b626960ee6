import { backoffDelay, type RetryPolicy } from '../runtime/retry.js';

/**
 * How long the CDC waits before its next session after a failure: capped exponential backoff with
 * full jitter (the retry helper's `backoffDelay`), counted over consecutive failures whether a
 * session failed to open or failed after opening — so a fault that ends every session moments after
 * it starts (a record Kafka refuses, a broker that accepts connections but fails transactions) backs
 * off like one that prevents opening. A session that ran `healthyMs` or longer before failing
 * starts the count over: its failure is a new incident, retried after the shortest wait.
 */

export const RECONNECT_POLICY: RetryPolicy = {
  attempts: Number.MAX_SAFE_INTEGER,
  baseMs: 250,
  maxMs: 10_000,
  jitter: 'full',
};
/** A session that ran this long before failing was healthy. */
export const HEALTHY_SESSION_MS = 30_000;

export class ReconnectBackoff {
  private failures = 0;
  private openedAt: number | null = null;

  constructor(
    private readonly policy: RetryPolicy = RECONNECT_POLICY,
    private readonly healthyMs = HEALTHY_SESSION_MS,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  /** Consecutive failures counted so far. */
  get count(): number {
    return this.failures;
  }

  /** A session opened (its run time decides, at its failure, whether the count starts over). */
  opened(): void {
    this.openedAt = this.now();
  }

  /** A session failed (`ranMs` since it opened) or could not open: the wait before the next attempt. */
  failed(): { delayMs: number; failures: number; ranMs: number | null } {
    const ranMs = this.openedAt === null ? null : this.now() - this.openedAt;
    this.openedAt = null;
    this.failures = ranMs !== null && ranMs >= this.healthyMs ? 1 : this.failures + 1;
    return {
      delayMs: backoffDelay(this.policy, Math.min(this.failures, 30), this.random),
      failures: this.failures,
      ranMs,
    };
  }
}
