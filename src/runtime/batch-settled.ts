import type { DeliveryContext, DeliveryOutcome, PendingBatch } from './delivery-types.js';

/**
 * The end of every settled batch, whichever way it went (checked or fast): the write's duration
 * and the records it stored go to the sink's metrics, each stored record's freshness (now − its
 * source commit time) is observed — except for a record read again after a state loss
 * (`ctx.isReread`) — and the batch's next offset is stored for the group commit. Call it only once
 * everything of the batch is written or parked (DLQ confirmed).
 */

export interface StoredSource {
  offset: string;
  /** The source commit time (ms), when the record has one. */
  sourceTsMs: number | null | undefined;
}

export function settleBatch(
  ctx: DeliveryContext,
  batch: PendingBatch,
  result: { written: number; dlq: number; writeMs: number },
  stored: readonly StoredSource[],
): DeliveryOutcome {
  const { metrics } = ctx;
  metrics.batchSeconds.observe(result.writeMs / 1000);
  if (result.written > 0) {
    metrics.recordsOut.inc(result.written);
    const now = Date.now();
    for (const s of stored) {
      if (typeof s.sourceTsMs === 'number' && s.sourceTsMs > 0 && !ctx.isReread?.(s.offset))
        metrics.freshnessSeconds.observe(Math.max(0, now - s.sourceTsMs) / 1000);
    }
  }
  ctx.commit(batch.topic, batch.partition, batch.nextOffset);
  return { kind: 'settled', written: result.written, dlq: result.dlq, writeMs: result.writeMs };
}
