import { PipelineError } from '../../core/errors.js';

/**
 * A circuit breaker so a system that is down is not hammered.
 *
 * - closed: requests flow; `failureThreshold` consecutive failures open the circuit.
 * - open: `acquire` fails fast with a retriable CIRCUIT_OPEN whose `details.retryAfterMs` is the
 *   remaining cool-down; once `cooldownMs` has passed since opening, the next `acquire` becomes the
 *   half-open probe.
 * - half-open: exactly one probe request is in flight; other callers fail fast (CIRCUIT_OPEN with a
 *   short retryAfterMs). The probe's success closes the circuit, its failure re-opens it for a full
 *   cool-down; a neutral outcome (e.g. 429) lets the next caller probe again.
 *
 * Callers report every acquired request exactly once: `success`, `failure` or `neutral`. Outcomes
 * reported while open (requests started before the circuit opened) are ignored.
 */

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  /** retryAfterMs suggested to callers refused while a half-open probe is in flight. */
  probeWaitMs?: number;
  now?: () => number;
  onStateChange?: (state: CircuitState) => void;
}

export interface CircuitSnapshot {
  state: CircuitState;
  consecutive_failures: number;
  /** When an open circuit lets a probe through (ISO-8601), when open. */
  half_open_at: string | null;
  opened_count: number;
}

export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private opened = 0;
  private readonly now: () => number;

  constructor(private readonly opts: CircuitBreakerOptions) {
    if (opts.failureThreshold < 1) throw new RangeError('failureThreshold must be >= 1');
    this.now = opts.now ?? Date.now;
  }

  get state(): CircuitState {
    return this.current;
  }

  /** Call before a request. Returns when the request may go; throws CIRCUIT_OPEN otherwise. */
  acquire(): void {
    if (this.current === 'closed') return;
    if (this.current === 'open') {
      const remaining = this.openedAt + this.opts.cooldownMs - this.now();
      if (remaining > 0) throw this.refusal(remaining, 'open');
      this.transition('half-open');
    }
    if (this.probing) throw this.refusal(this.opts.probeWaitMs ?? Math.min(1000, this.opts.cooldownMs), 'half-open');
    this.probing = true;
  }

  /** The request reached a working system. */
  success(): void {
    if (this.current === 'open') return;
    this.failures = 0;
    this.probing = false;
    if (this.current === 'half-open') this.transition('closed');
  }

  /** The request failed in a way that suggests the system is down (network, timeout, 5xx). */
  failure(): void {
    if (this.current === 'open') return;
    this.failures++;
    if (this.current === 'half-open' || this.failures >= this.opts.failureThreshold) {
      this.probing = false;
      this.openedAt = this.now();
      this.opened++;
      this.transition('open');
    }
  }

  /** The request ended saying nothing about the system's health (e.g. 429): releases a probe. */
  neutral(): void {
    this.probing = false;
  }

  snapshot(): CircuitSnapshot {
    return {
      state: this.current,
      consecutive_failures: this.failures,
      half_open_at: this.current === 'open' ? new Date(this.openedAt + this.opts.cooldownMs).toISOString() : null,
      opened_count: this.opened,
    };
  }

  private transition(to: CircuitState): void {
    if (to === this.current) return;
    this.current = to;
    this.opts.onStateChange?.(to);
  }

  private refusal(retryAfterMs: number, state: CircuitState): PipelineError {
    return new PipelineError(
      'CIRCUIT_OPEN',
      `external system circuit is ${state}: not calling it for ${Math.ceil(retryAfterMs)} ms`,
      {
        retriable: true,
        consumesAttempt: false,
        details: { retryAfterMs: Math.ceil(retryAfterMs), circuit: state, consecutiveFailures: this.failures },
      },
    );
  }
}
