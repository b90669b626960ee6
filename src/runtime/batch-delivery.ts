import { isRetriable, isStateLost, PipelineError, toPipelineError, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Sink, SinkBatch } from '../sinks/contract.js';
import type { DlqFailure, DlqWriter } from './dlq-writer.js';
import { retry, type RetryPolicy } from './retry.js';
import type { Semaphore } from './semaphore.js';
import { deliverEncoded } from './encoded-delivery.js';
import { EncodedRecord } from './encoded-record.js';
import type { Decoded } from './sink-decode.js';
import type { SinkMetrics } from './sink-metrics.js';

/**
 * Settles one batch of one partition. A sink with a fast path for undecoded batches gets the batch
 * that way first (encoded-delivery.ts); otherwise, or when it declines, the checked way, in this
 * order (what "offsets advance only for settled records" means):
 *   1. records that failed to decode, or that `sink.check` rejects, go to the DLQ — confirmed;
 *   2. `sink.write` with the remaining records and `nextOffset`, retried with the sink's policy
 *      while the error is retriable; on exhaustion or a non-retriable error the batch's records go
 *      to the DLQ (confirmed), then `write` is called with no records so a stored offset advances;
 *   3. the Kafka offset `nextOffset` is committed (also for sinks with stored offsets: lag stays
 *      visible to Kafka tools). The commit is issued, not awaited (the runner awaits outstanding
 *      commits on revocation and stop); a failed commit is logged, never fatal: the write is
 *      idempotent and the next commit covers it.
 * Infrastructure failures of steps 1 and 2 (DLQ unreachable, the empty write failing) are retried
 * without bound while the partition is owned; once it is revoked the batch is abandoned unsettled
 * and its next owner reads it again. A SINK_STATE_LOST from the sink ends the batch unsettled too:
 * the runner re-positions every partition.
 */

export interface DeliveryItem {
  offset: string;
  decoded: Decoded;
}

export interface PendingBatch {
  topic: string;
  partition: number;
  items: DeliveryItem[];
  /** Last item's offset + 1. */
  nextOffset: string;
}

export type DeliveryOutcome =
  | { kind: 'settled'; written: number; dlq: number; writeMs: number }
  | { kind: 'state-lost'; error: PipelineError }
  | { kind: 'abandoned' };

export interface DeliveryContext {
  sink: Sink;
  stage: string;
  dlq: DlqWriter;
  metrics: SinkMetrics;
  log: Logger;
  retryPolicy: RetryPolicy;
  writeLock: Semaphore;
  /** Issues the offset commit (asynchronously; the runner tracks and logs it). */
  commit(topic: string, partition: number, nextOffset: string): void;
  /** False once the partition is being revoked (or a stop's drain grace is over): stop retrying. */
  owned(): boolean;
  /** Aborted when a stop's drain grace is over: interrupts a retry's backoff sleep. */
  signal?: AbortSignal;
  onError(err: PipelineError): void;
  /** True for a record written before and read again after a state loss: not counted as freshness. */
  isReread?(offset: string): boolean;
}

const INFRA_RETRY: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 200, maxMs: 10000, jitter: 'full' };

/** The delay a failure asks for (`details.retryAfterMs`: Retry-After, an open circuit's cool-down). */
export function requestedDelayMs(err: unknown): number | undefined {
  const v = err instanceof PipelineError ? err.details?.retryAfterMs : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined;
}

export async function deliverBatch(ctx: DeliveryContext, batch: PendingBatch): Promise<DeliveryOutcome> {
  const { sink, metrics } = ctx;
  const fast = await deliverEncoded(ctx, batch);
  if (fast !== null) return fast;
  const rejected: DlqFailure[] = [];
  const accepted: Array<Extract<Decoded, { kind: 'record' }>> = [];
  for (const { decoded } of batch.items) {
    if (decoded.kind === 'skip') continue;
    if (decoded.kind === 'reject') {
      rejected.push({ origin: decoded.origin, error: decoded.error, attempts: 1 });
      continue;
    }
    let verdict: PipelineError | null = decoded.record instanceof EncodedRecord ? decoded.record.decode() : null;
    if (verdict) {
      rejected.push({ origin: decoded.origin, error: verdict, attempts: 1 });
      continue;
    }
    try {
      verdict = sink.check?.(decoded.record) ?? null;
    } catch (err) {
      verdict = toPipelineError(err, 'INTERNAL');
    }
    if (verdict) rejected.push({ origin: decoded.origin, error: verdict, attempts: 1 });
    else accepted.push(decoded);
  }

  const infra = <T>(what: string, fn: () => Promise<T>): Promise<T> =>
    retry(fn, {
      ...INFRA_RETRY,
      shouldRetry: (err) => ctx.owned() && !isStateLost(err),
      onRetry: (err, attempt, delayMs) => {
        metrics.errors.inc();
        ctx.onError(toPipelineError(err));
        ctx.log.warn({ err: errorMessage(err), attempt, delayMs, partition: batch.partition }, `${what} failed; retrying`);
      },
    });
  const write = (records: SinkBatch['records']) =>
    sink.write({ topic: batch.topic, partition: batch.partition, records, nextOffset: batch.nextOffset });

  try {
    if (rejected.length > 0) {
      await infra('DLQ write', () => ctx.dlq.send(ctx.stage, rejected));
      metrics.dlq.inc(rejected.length);
    }
    const records = accepted.map((a) => a.record);
    const t0 = performance.now();
    let attempts = 0;
    let written = records.length;
    let parked = rejected.length;
    try {
      await ctx.writeLock.run(() =>
        retry(
          async (attempt) => {
            attempts = attempt;
            await write(records);
          },
          {
            ...ctx.retryPolicy,
            shouldRetry: (err) => isRetriable(err) && !isStateLost(err) && ctx.owned(),
            requestedDelayMs,
            signal: ctx.signal,
            onRetry: (err, attempt, delayMs) => {
              metrics.retries.inc();
              metrics.errors.inc();
              ctx.onError(toPipelineError(err));
              ctx.log.warn({ err: errorMessage(err), attempt, delayMs, partition: batch.partition }, 'sink write failed; retrying');
            },
          },
        ),
      );
    } catch (err) {
      if (isStateLost(err)) return { kind: 'state-lost', error: err as PipelineError };
      // Given up because the partition is gone or the drain is over, not because the batch is bad.
      if (!ctx.owned()) return { kind: 'abandoned' };
      const failure = toPipelineError(err, 'SINK_WRITE_FAILED');
      metrics.errors.inc();
      ctx.onError(failure);
      ctx.log.error({ code: failure.code, err: failure.message, attempts, records: records.length, partition: batch.partition }, 'sink write gave up; records go to the DLQ');
      const failures = accepted.map((a) => ({ origin: a.origin, error: failure, attempts }));
      await infra('DLQ write', () => ctx.dlq.send(ctx.stage, failures));
      metrics.dlq.inc(failures.length);
      await infra('empty write (advancing the stored offset)', () => ctx.writeLock.run(() => write([])));
      written = 0;
      parked += failures.length;
    }
    const writeMs = performance.now() - t0;
    metrics.batchSeconds.observe(writeMs / 1000);
    if (written > 0) {
      metrics.recordsOut.inc(written);
      const now = Date.now();
      for (const a of accepted) {
        const ts = a.record.event.source_ts_ms;
        if (a.record.event.origin !== 'backfill' && !a.origin.replay && typeof ts === 'number' && ts > 0 && !ctx.isReread?.(a.record.offset)) {
          metrics.freshnessSeconds.observe(Math.max(0, now - ts) / 1000);
        }
      }
    }
    ctx.commit(batch.topic, batch.partition, batch.nextOffset);
    return { kind: 'settled', written, dlq: parked, writeMs };
  } catch (err) {
    if (isStateLost(err)) return { kind: 'state-lost', error: err as PipelineError };
    if (!ctx.owned()) return { kind: 'abandoned' };
    throw err;
  }
}
