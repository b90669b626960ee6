import { KafkaJS } from '@confluentinc/kafka-javascript';
import type pg from 'pg';
import type { Admin } from '../../src/kafka/client.js';

/**
 * Consumer lag of the pipeline's stages, sampled by the whole-pipeline bench to show whether a
 * sustained rate is kept up with (lag flat) or not (lag growing).
 *
 * Kafka lag is the last stable offset (read_committed high watermark) minus the group's committed
 * offset, summed over partitions. A caught-up group still shows up to one per partition: the
 * transaction marker after the last record it consumed.
 */

export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic, { isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED }),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const done = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  let lag = 0;
  for (const e of ends) {
    const c = done.get(e.partition);
    lag += Math.max(0, Number(e.offset) - (c !== undefined && c >= 0 ? c : Number(e.low)));
  }
  return lag;
}

/** WAL bytes the CDC's slot has not confirmed yet. */
export async function slotLagBytes(db: pg.Client, slot: string): Promise<number> {
  const r = await db.query<{ b: string | null }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS b FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return Number(r.rows[0]?.b ?? 0);
}

export interface LagSeries {
  name: string;
  samples: number[];
}

/** first / last / max of a series, and its slope (units per second) between the first and last third. */
export function lagTrend(
  samples: number[],
  intervalSeconds: number,
): { first: number; last: number; max: number; growthPerSecond: number } {
  const third = Math.max(1, Math.floor(samples.length / 3));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const head = mean(samples.slice(0, third));
  const tail = mean(samples.slice(-third));
  const span = Math.max(1, (samples.length - third) * intervalSeconds);
  return {
    first: samples[0] ?? 0,
    last: samples[samples.length - 1] ?? 0,
    max: Math.max(0, ...samples),
    growthPerSecond: (tail - head) / span,
  };
}
