import { errorMessage, isStateLost, toPipelineError } from '../core/errors.js';
import type { EncodedWriteResult } from '../core/sink-contract.js';
import { settleBatch } from './batch-settled.js';
import type { DeliveryContext, DeliveryOutcome, PendingBatch } from './delivery-types.js';
import { EncodedRecord } from './encoded-record.js';

/**
 * The fast way of settling a batch (contract: `Sink.writeEncoded`), tried by `deliverBatch` first
 * for a sink that has one, on batches of at least its `encodedMinRecords`: when every message of the batch is a record of the topic with a value
 * (no decode verdict yet, not a DLQ replay), the sink gets the undecoded batch once. Returns the
 * outcome when it settled the batch (written, offset committed), or null: the batch then goes the
 * checked way (decode, `check`, DLQ, `write` with retries), which is also where any failure of the
 * fast attempt is retried — so a transient error costs one attempt here, and a batch the sink will
 * not take undecoded is judged record by record as usual.
 */
export async function deliverEncoded(ctx: DeliveryContext, batch: PendingBatch): Promise<DeliveryOutcome | null> {
  const { sink, metrics } = ctx;
  const writeEncoded = sink.writeEncoded?.bind(sink);
  if (!writeEncoded || batch.items.length === 0 || batch.items.length < (sink.encodedMinRecords ?? 1)) return null;
  const records: EncodedRecord[] = [];
  for (const { decoded } of batch.items) {
    if (
      decoded.kind !== 'record' ||
      decoded.origin.replay ||
      !(decoded.record instanceof EncodedRecord) ||
      decoded.record.value === null
    )
      return null;
    records.push(decoded.record);
  }
  const t0 = performance.now();
  let result: EncodedWriteResult;
  try {
    result = await ctx.writeLock.run(() =>
      writeEncoded({
        topic: batch.topic,
        partition: batch.partition,
        nextOffset: batch.nextOffset,
        records: records as Array<{ offset: string; value: Buffer }>,
      }),
    );
  } catch (err) {
    if (isStateLost(err)) return { kind: 'state-lost', error: toPipelineError(err) };
    if (!ctx.owned()) return { kind: 'abandoned' };
    metrics.errors.inc();
    metrics.fastPath.failed.inc();
    ctx.onError(toPipelineError(err));
    ctx.log.warn(
      { err: errorMessage(err), partition: batch.partition, records: records.length },
      'sink fast write failed; the batch goes the checked way',
    );
    return null;
  }
  if (result.kind === 'needs-check') {
    metrics.fastPath.declined.inc();
    return null;
  }
  metrics.fastPath.written.inc();
  const sourceTs = result.kind === 'written' ? result.sourceTsMs : [];
  return settleBatch(
    ctx,
    batch,
    { written: records.length, dlq: 0, writeMs: performance.now() - t0 },
    records.map((r, i) => ({ offset: r.offset, sourceTsMs: sourceTs[i] })),
  );
}
