/**
 * How a failing call is tried again: the shape every component declares (a sink's factory, the
 * runtime's defaults) and the one retry helper (src/runtime/retry.ts) follows. Exponential backoff
 * from `baseMs`, capped at `maxMs`.
 */
export interface RetryPolicy {
  /** Total attempts including the first (>= 1). */
  attempts: number;
  baseMs: number;
  maxMs: number;
  /** 'full' picks uniformly in [0, backoff]; 'none' uses the backoff as is (tests). */
  jitter?: 'full' | 'none';
}
