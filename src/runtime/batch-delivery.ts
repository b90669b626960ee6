import { isStateLost, PipelineError, toPipelineError, errorMessage } from '../core/errors.js';
import type { DlqFailure } from './dlq-writer.js';
import { retry, type RetryPolicy } from './retry.js';
import { settleBatch } from './batch-settled.js';
import type { DeliveryContext, DeliveryOutcome, PendingBatch } from './delivery-types.js';
import { writeSplitting } from './write-splitting.js';
import { deliverEncoded } from './encoded-delivery.js';
import { EncodedRecord } from './encoded-record.js';
import type { Decoded } from './sink-decode.js';

/**
 * Settles one batch of one partition. A sink with a fast path for undecoded batches gets the batch
 * that way first (encoded-delivery.ts); otherwise, or when it declines, the checked way, in this
 * order (what "offsets advance only for settled records" means):
 *   1. records that failed to decode, or that `sink.check` rejects, go to the DLQ — confirmed;
 *   2. `sink.write` with the remaining records and `nextOffset`. A retriable error (the system
 *      down, a timeout, a quota) is an outage, not a bad record: it is retried with the sink's
 *      backoff for as long as it lasts and the partition owned — lag grows, nothing is parked. A
 *      non-retriable error on several records splits them in two halves, each written on its own
 *      (write-splitting.ts), until the record that fails alone is found: only that record goes to
 *      the DLQ (confirmed before any later offset is stored), and `write` is called with no records
 *      at the end when needed so a stored offset advances past it;
 *   3. the Kafka offset `nextOffset` is committed (also for sinks with stored offsets: lag stays
 *      visible to Kafka tools). The commit is issued, not awaited (the runner awaits outstanding
 *      commits on revocation and stop); a failed commit is logged, never fatal: the write is
 *      idempotent and the next commit covers it.
 * Infrastructure failures of steps 1 and 2 (DLQ unreachable, the empty write failing) are retried
 * without bound while the partition is owned; once it is revoked the batch is abandoned unsettled
 * and its next owner reads it again. A SINK_STATE_LOST from the sink ends the batch unsettled too:
 * the runner re-positions every partition.
 */

export type { DeliveryContext, DeliveryItem, DeliveryOutcome, PendingBatch } from './delivery-types.js';

const INFRA_RETRY: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, baseMs: 200, maxMs: 10000, jitter: 'full' };

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
        ctx.log.warn(
          { err: errorMessage(err), attempt, delayMs, partition: batch.partition },
          `${what} failed; retrying`,
        );
      },
    });

  try {
    if (rejected.length > 0) {
      await infra('DLQ write', () => ctx.dlq.send(ctx.stage, rejected));
      metrics.dlq.inc(rejected.length);
    }
    const t0 = performance.now();
    const settled = await writeSplitting(ctx, batch, accepted, infra);
    const written = settled.written;
    const parked = rejected.length + settled.parked;
    // Freshness is what a live record took to get here: not a backfill's, a replay's or a re-read's.
    const live = settled.stored.filter((a) => a.record.event.origin !== 'backfill' && !a.origin.replay);
    return settleBatch(
      ctx,
      batch,
      { written, dlq: parked, writeMs: performance.now() - t0 },
      live.map((a) => ({ offset: a.record.offset, sourceTsMs: a.record.event.source_ts_ms })),
    );
  } catch (err) {
    if (isStateLost(err)) return { kind: 'state-lost', error: err as PipelineError };
    if (!ctx.owned()) return { kind: 'abandoned' };
    throw err;
  }
}
