import { PipelineError, isRetriable } from '../core/errors.js';
import type { RetryPolicy } from '../core/retry-policy.js';
import { sleep } from '../core/sleep.js';

/**
 * The one retry helper. Exponential backoff with full jitter, bounded attempts, an optional
 * server-requested delay (Retry-After), and an abort signal. Only errors for which
 * `shouldRetry` (default: `isRetriable`) is true are retried; the last error is rethrown.
 * A PipelineError with `consumesAttempt: false` (an open circuit) is waited out without spending
 * an attempt; the backoff still grows with every failure.
 */

export type { RetryPolicy };

export interface RetryOptions extends RetryPolicy {
  shouldRetry?: (err: unknown, attempt: number) => boolean;
  /** A delay the failure itself asked for (e.g. Retry-After), used when larger than the backoff. */
  requestedDelayMs?: (err: unknown) => number | undefined;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  signal?: AbortSignal;
}

/** The delay a failure asks for (`details.retryAfterMs`: Retry-After, an open circuit's cool-down). */
export function requestedDelayMs(err: unknown): number | undefined {
  const v = err instanceof PipelineError ? err.details?.retryAfterMs : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 100, maxMs: 10000, jitter: 'full' };

/** Backoff before attempt `attempt + 1` (attempt counts from 1). */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
  return policy.jitter === 'none' ? exp : Math.floor(random() * exp);
}

export { sleep };

export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const shouldRetry = opts.shouldRetry ?? ((err: unknown) => isRetriable(err));
  let spent = 0;
  for (let call = 1; ; call++) {
    const attempt = spent + 1;
    try {
      return await fn(attempt);
    } catch (err) {
      if (!(err instanceof PipelineError && !err.consumesAttempt)) spent++;
      if (spent >= opts.attempts || !shouldRetry(err, attempt) || opts.signal?.aborted) throw err;
      const requested = opts.requestedDelayMs?.(err);
      const delay = Math.min(opts.maxMs, Math.max(backoffDelay(opts, Math.min(call, 30)), requested ?? 0));
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, opts.signal);
    }
  }
}
