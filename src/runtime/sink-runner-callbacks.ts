import { errorMessage, PipelineError } from '../core/errors.js';
import type { PartitionBatch } from '../kafka/batch-consumer.js';
import { DeliveryLane, type QueuedMessage } from './delivery-lane.js';
import type { SinkRunnerState } from './sink-runner-state.js';

/**
 * The sink runner's consumer callbacks (BatchConsumer's `startOffsets`, `onRevoke`,
 * `onCaughtUp` and the batch handler):
 * - assign: each partition is positioned explicitly (offsets.ts) and gets a delivery lane; if the
 *   positions cannot be read the runner fails (the consumer then takes none);
 * - revoke: the lanes close, their in-flight batches finish and commit, the queued rest is dropped
 *   for the next owner to re-read;
 * - caught up: an idle partition's position past a trailing transaction marker is settled and
 *   committed, so the lag can reach 0 (not in a bounded run, nor while stopping or resyncing);
 * - batch: the handed-over messages are queued in the partition's lane, or (lane full, paused)
 *   dropped and the partition re-read from the first of them once it resumes; in a bounded run
 *   (`opts.endOffsets`) messages past a partition's end are dropped and the partition held.
 */
export interface ConsumerCallbacks {
  onAssign(mine: number[]): Promise<Map<number, number> | undefined>;
  onRevoke(mine: number[]): Promise<void>;
  onCaughtUp(partition: number, position: number): void;
  onBatch(batch: PartitionBatch): Promise<void>;
}

export function consumerCallbacks(state: SinkRunnerState): ConsumerCallbacks {
  const { log, policy, decoder, stats, metrics, opts } = state.setup;
  const { lanes, host, commits } = state;

  const onAssign = async (mine: number[]): Promise<Map<number, number> | undefined> => {
    try {
      const start = await state.positions(mine);
      for (const p of mine) lanes.set(p, new DeliveryLane(p, start.offsets.get(p) ?? '0', policy, host, decoder));
      log.info(
        { offsets: Object.fromEntries(start.offsets), sources: Object.fromEntries(start.sources) },
        'partitions assigned',
      );
      return new Map([...start.offsets].map(([p, o]) => [p, Number(o)]));
    } catch (err) {
      state.fail(
        new PipelineError(
          'SERVICE_UNREACHABLE',
          `cannot position partitions ${mine.join(', ')}: ${errorMessage(err)}`,
          { cause: err },
        ),
      );
      return undefined;
    }
  };

  const onRevoke = async (mine: number[]): Promise<void> => {
    const revoked = mine.map((p) => lanes.get(p)).filter((l): l is DeliveryLane => l !== undefined);
    for (const lane of revoked) {
      lane.close();
      if (lane.paused) host.resume(lane);
    }
    await Promise.all(revoked.map((l) => l.idle()));
    // A stop has flushed already, after its drain: leaving the group revokes with the consumer closing.
    if (!state.stopping) await commits.flush();
    for (const lane of revoked) if (lanes.get(lane.partition) === lane) lanes.delete(lane.partition);
    log.info({ partitions: mine }, 'partitions revoked');
    state.updateLag();
  };

  const ends = opts.endOffsets ? new Map([...opts.endOffsets].map(([p, o]) => [p, Number(o)])) : undefined;

  // An idle partition of a transactional topic ends on a marker: settled, so the lag can reach 0
  // and the group's offset the high watermark. Not in a bounded run: past its ends the consumer's
  // position may cover records the runner left alone.
  const onCaughtUp = (partition: number, position: number): void => {
    const lane = lanes.get(partition);
    if (ends || state.stopping || state.resyncing || !lane?.skipTo(position)) return;
    commits.commit(partition, lane.nextOffset);
    state.updateLag();
  };

  // The runner owns the handed-over messages from here on (queued, or deliberately dropped and re-read).
  const onBatch = async (batch: PartitionBatch): Promise<void> => {
    if (state.stopping) return;
    const lane = lanes.get(batch.partition);
    if (!lane) return;
    // A full lane (paused) takes nothing more: the partition is re-read from here once it resumes,
    // so at most one hand-over batch lands on top of the pause threshold.
    if (lane.paused) {
      state.consumer?.seek(batch.partition, batch.messages[0]?.offset ?? batch.nextOffset);
      return;
    }
    if (Number.isSafeInteger(batch.highWatermark) && batch.highWatermark >= 0)
      lane.highWatermark = String(batch.highWatermark);
    const end = ends ? (ends.get(batch.partition) ?? 0) : Number.POSITIVE_INFINITY;
    const queued: QueuedMessage[] = [];
    for (const m of batch.messages) {
      if (m.offset >= end) continue;
      queued.push({
        offset: String(m.offset),
        key: typeof m.key === 'string' ? Buffer.from(m.key) : (m.key ?? null),
        value: m.value,
      });
    }
    if (queued.length < batch.messages.length) state.pausePartition(batch.partition, true);
    const n = lane.enqueue(queued);
    stats.recordsIn += n;
    metrics.recordsIn.inc(n);
  };

  return { onAssign, onRevoke, onCaughtUp, onBatch };
}
