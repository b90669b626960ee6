import { isRetriable, isStateLost, toPipelineError, errorMessage, type PipelineError } from '../core/errors.js';
import type { SinkBatch } from '../core/sink-contract.js';
import type { DeliveryContext, PendingBatch } from './delivery-types.js';
import { requestedDelayMs, retry } from './retry.js';
import type { Decoded } from './sink-decode.js';

/**
 * Step 2 of settling a batch (batch-delivery.ts): `sink.write` of the records that passed the
 * checks, with what the runtime promises about failures:
 *
 * - **An outage waits.** A retriable error is retried with the sink's backoff (its `baseMs` and
 *   `maxMs`; its `attempts` do not bound an outage) for as long as the partition is owned and the
 *   drain is not over. Nothing goes to the DLQ for it; the partition's lag grows meanwhile.
 * - **Only the culprit is parked.** A non-retriable error on more than one record says the batch
 *   holds a record the sink refuses, not which one: the records are split in two halves, written
 *   one after the other (the first half with the second half's first offset as its next offset, so
 *   a stored offset never passes an unsettled record), each split again while it fails, until a
 *   record that fails alone is found. That record goes to the DLQ, confirmed before anything after
 *   it is written. A batch with k bad records of n costs about k·log2(n) extra writes.
 * - Finally, when the last write did not carry `batch.nextOffset` (its records were parked), an
 *   empty write advances a stored offset past them.
 *
 * Throws the write's error when it gave up because the partition is no longer owned, the drain is
 * over, or the sink lost its state (SINK_STATE_LOST): the batch is then unsettled.
 */

type Accepted = Extract<Decoded, { kind: 'record' }>;

export interface SplitOutcome {
  /** Records stored by the sink. */
  written: number;
  /** Records parked in the DLQ (each found failing alone). */
  parked: number;
  /** The stored records, in offset order. */
  stored: Accepted[];
}

type Infra = <T>(what: string, fn: () => Promise<T>) => Promise<T>;

export async function writeSplitting(
  ctx: DeliveryContext,
  batch: PendingBatch,
  accepted: Accepted[],
  infra: Infra,
): Promise<SplitOutcome> {
  const { sink, metrics } = ctx;
  const out: SplitOutcome = { written: 0, parked: 0, stored: [] };
  let lastWriteCarriedEnd = false;

  const write = (records: SinkBatch['records'], nextOffset: string) =>
    ctx.writeLock.run(() =>
      retry(() => sink.write({ topic: batch.topic, partition: batch.partition, records, nextOffset }), {
        ...ctx.retryPolicy,
        attempts: Number.MAX_SAFE_INTEGER,
        shouldRetry: (err) => isRetriable(err) && !isStateLost(err) && ctx.owned(),
        requestedDelayMs,
        signal: ctx.signal,
        onRetry: (err, attempt, delayMs) => {
          metrics.retries.inc();
          metrics.errors.inc();
          ctx.onError(toPipelineError(err));
          ctx.log.warn(
            { err: errorMessage(err), attempt, delayMs, partition: batch.partition, records: records.length },
            'sink write failed; retrying until the system answers',
          );
        },
      }),
    );

  /** Writes `items` (consecutive accepted records) with `nextOffset`, splitting on a refusal. */
  const settle = async (items: Accepted[], nextOffset: string): Promise<void> => {
    try {
      await write(
        items.map((a) => a.record),
        nextOffset,
      );
      out.written += items.length;
      out.stored.push(...items);
      lastWriteCarriedEnd = nextOffset === batch.nextOffset;
      return;
    } catch (err) {
      if (isStateLost(err) || !ctx.owned() || isRetriable(err) || items.length === 0) throw err;
      const refusal = toPipelineError(err, 'SINK_REJECTED');
      metrics.errors.inc();
      ctx.onError(refusal);
      if (items.length === 1) return park(items[0] as Accepted, refusal);
      ctx.log.warn(
        { code: refusal.code, err: refusal.message, records: items.length, partition: batch.partition },
        'sink refused the batch; splitting it to find the record it refuses',
      );
    }
    const mid = Math.ceil(items.length / 2);
    const right = items.slice(mid);
    await settle(items.slice(0, mid), (right[0] as Accepted).record.offset);
    await settle(right, nextOffset);
  };

  const park = async (item: Accepted, error: PipelineError): Promise<void> => {
    ctx.log.error(
      { code: error.code, err: error.message, offset: item.record.offset, partition: batch.partition },
      'sink refused a record; it goes to the DLQ',
    );
    await infra('DLQ write', () => ctx.dlq.send(ctx.stage, [{ origin: item.origin, error, attempts: 1 }]));
    metrics.dlq.inc(1);
    out.parked++;
    lastWriteCarriedEnd = false;
  };

  await settle(accepted, batch.nextOffset);
  if (!lastWriteCarriedEnd) await infra('empty write (advancing the stored offset)', () => write([], batch.nextOffset));
  return out;
}
