import type { Config } from '../../config/load.js';
import { PipelineError } from '../../core/errors.js';
import { eventKey } from '../../core/event-identity.js';
import type { Logger } from '../../core/logger.js';
import type { Sink, SinkBatch, SinkContext, SinkRecord } from '../../core/sink-contract.js';
import { CircuitBreaker, type CircuitSnapshot } from './circuit-breaker.js';
import { HttpFailure, parseAuthHeader, postJson } from './http-client.js';
import { circuitGaugeValue, externalMetrics } from './metrics.js';
import { Pseudonymiser } from './pseudonymise.js';
import { encodeBatch, idempotencyKey } from './wire-format.js';

/**
 * The external-system sink: one `write` = at most one POST of the batch (wire format in
 * wire-format.ts). It never retries itself: a retriable PipelineError (network, TIMEOUT, 5xx, 429,
 * CIRCUIT_OPEN) makes the runtime retry the same batch, which carries the same Idempotency-Key;
 * `details.retryAfterMs`, when present, is the delay the system (Retry-After) or the open circuit
 * asked for. HTTP_REJECTED (other 4xx) is final: the runtime DLQs the batch. No offsets are stored
 * (`storedOffsets` → null): the system dedupes by key and by event key — (event_id, event_ts),
 * src/core/event-identity.ts — so at-least-once delivery
 * from Kafka's committed offsets is exactly-once in effect.
 */

export interface ExternalSinkOptions {
  /** Overrides for the breaker (tests inject a clock and short cool-downs). */
  failureThreshold?: number;
  cooldownMs?: number;
  now?: () => number;
}

export interface ExternalSinkStatus extends CircuitSnapshot {
  url: string | null;
  requests: number;
  events_delivered: number;
  last_success_at: string | null;
  last_error: { code: string; message: string; at: string } | null;
}

const live = new Set<ExternalSink>();

/** The status of every external sink open in this process (normally one), for heartbeats and /health. */
export function externalSinkStatus(): Record<string, unknown> {
  const all = [...live].map((s) => s.status());
  if (all.length === 0) return {};
  return { external: all.length === 1 ? all[0] : all };
}

export class ExternalSink implements Sink {
  readonly name = 'external';
  private readonly config: Config;
  private readonly log: Logger;
  private readonly breaker: CircuitBreaker;
  private readonly headers: Record<string, string> = {};
  private readonly metrics = externalMetrics();
  private readonly pseudonymiser: Pseudonymiser | undefined;
  private requests = 0;
  private delivered = 0;
  private lastSuccess: string | null = null;
  private lastError: ExternalSinkStatus['last_error'] = null;

  constructor(ctx: SinkContext, opts: ExternalSinkOptions = {}) {
    this.config = ctx.config;
    this.log = ctx.log.child({ sink: 'external' });
    this.breaker = new CircuitBreaker({
      failureThreshold: opts.failureThreshold ?? ctx.config.EXTERNAL_CIRCUIT_FAILURES,
      cooldownMs: opts.cooldownMs ?? ctx.config.EXTERNAL_CIRCUIT_COOLDOWN_MS,
      now: opts.now,
      onStateChange: (state) => {
        this.metrics.circuit.set(circuitGaugeValue(state));
        const log = state === 'open' ? this.log.warn.bind(this.log) : this.log.info.bind(this.log);
        log({ circuit: state }, `external system circuit ${state}`);
      },
    });
    const key = ctx.config.EXTERNAL_PSEUDONYMIZE_KEY;
    this.pseudonymiser = key === undefined ? undefined : new Pseudonymiser(key);
    if (ctx.config.EXTERNAL_API_AUTH_HEADER !== undefined) {
      const { name, value } = parseAuthHeader(ctx.config.EXTERNAL_API_AUTH_HEADER);
      this.headers[name] = value;
    }
  }

  async start(): Promise<void> {
    if (this.config.EXTERNAL_API_URL === undefined) {
      throw new PipelineError(
        'CONFIG_INVALID',
        `EXTERNAL_API_URL is not set: point it at the external system (e.g. http://127.0.0.1:${this.config.EXTERNAL_RECEIVER_PORT}/events, served by \`engage external-receiver\`)`,
      );
    }
    this.metrics.circuit.set(circuitGaugeValue(this.breaker.state));
    live.add(this);
  }

  /** An event without a usable id cannot be deduplicated by the system: DLQ it alone, not its batch. */
  check(record: SinkRecord): PipelineError | null {
    const id = (record.event as { event_id?: unknown }).event_id;
    if (typeof id === 'string' && id.length > 0) return null;
    return new PipelineError('MISSING_FIELD', 'event_id is missing: the external system dedupes on it', {
      details: { field: 'event_id' },
    });
  }

  async storedOffsets(): Promise<null> {
    return null;
  }

  async write(batch: SinkBatch): Promise<void> {
    if (batch.records.length === 0) return;
    const url = this.config.EXTERNAL_API_URL;
    if (url === undefined) throw new PipelineError('CONFIG_INVALID', 'EXTERNAL_API_URL is not set');
    const p = this.pseudonymiser;
    const events = batch.records.map((r) => (p === undefined ? r.event : p.event(r.event)));
    const keys = events.map(eventKey);
    const idemKey = idempotencyKey(keys);
    try {
      this.breaker.acquire();
    } catch (err) {
      this.metrics.requests.inc({ outcome: 'circuit_open' });
      throw this.noteError(err as PipelineError);
    }
    const body = encodeBatch(events, keys);
    const started = performance.now();
    this.requests++;
    try {
      await postJson(url, body, { ...this.headers, 'idempotency-key': idemKey }, this.config.EXTERNAL_API_TIMEOUT_MS);
      this.breaker.success();
      this.observe('2xx', started);
      this.metrics.events.inc(events.length);
      this.delivered += events.length;
      this.lastSuccess = new Date().toISOString();
    } catch (err) {
      if (!(err instanceof HttpFailure)) {
        this.breaker.neutral();
        throw err;
      }
      this.observe(err.outcome, started);
      if (err.outcome === '429') this.breaker.neutral();
      else if (err.retriable) this.breaker.failure();
      else this.breaker.success();
      this.log.debug(
        { code: err.code, details: err.details, events: events.length, key: idemKey },
        'external POST failed',
      );
      throw this.noteError(err);
    }
  }

  async health(): Promise<{ ok: boolean; detail?: Record<string, unknown> }> {
    const s = this.status();
    return { ok: s.state !== 'open', detail: { ...s } };
  }

  /** Synchronous status for the heartbeat: circuit state and the last outcome. */
  status(): ExternalSinkStatus {
    return {
      ...this.breaker.snapshot(),
      url: redactUrl(this.config.EXTERNAL_API_URL),
      requests: this.requests,
      events_delivered: this.delivered,
      last_success_at: this.lastSuccess,
      last_error: this.lastError,
    };
  }

  async close(): Promise<void> {
    live.delete(this);
  }

  private observe(outcome: string, started: number): void {
    this.metrics.requests.inc({ outcome });
    this.metrics.duration.observe({ outcome }, (performance.now() - started) / 1000);
  }

  private noteError(err: PipelineError): PipelineError {
    this.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
    return err;
  }
}

/** The URL without credentials, for status and logs. */
function redactUrl(url: string | undefined): string | null {
  if (url === undefined) return null;
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
