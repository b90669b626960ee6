import type { Admin } from '../kafka/client.js';
import type { Sink } from '../core/sink-contract.js';

/**
 * Where each newly assigned partition starts, decided once per assignment (and again after a
 * SINK_STATE_LOST), so the runner can hand librdkafka explicit offsets:
 *
 * 1. the sink's stored offsets, when `storedOffsets` returns a map (offsets stored atomically with
 *    the data win over Kafka's: they cannot be behind what the sink holds);
 * 2. when it returns null, the consumer group's committed offset (a normal group resume);
 * 3. for a partition with neither: `sink.startPosition()` — 'earliest' (the default) is the
 *    partition's low watermark, `{ timestampMs }` the first offset at or after that time (the high
 *    watermark when no record is that recent).
 *
 * With `fallback: 'committed'` (a DLQ replay: the sink's start position is meant for the enriched
 * topic) a partition without a stored offset uses the committed offset, then the low watermark.
 *
 * Every result is a concrete offset (decimal string), which also makes lag known from the start.
 */

export type StartSource = 'stored' | 'committed' | 'earliest' | 'timestamp';

export interface StartOffsets {
  offsets: Map<number, string>;
  sources: Map<number, StartSource>;
  /** False when the sink returned null (it relies on Kafka's committed offsets). */
  sinkStoresOffsets: boolean;
}

export async function resolveStartOffsets(
  sink: Sink,
  admin: Admin,
  groupId: string,
  topic: string,
  partitions: number[],
  fallback: 'sink' | 'committed' = 'sink',
): Promise<StartOffsets> {
  const offsets = new Map<number, string>();
  const sources = new Map<number, StartSource>();
  if (partitions.length === 0) return { offsets, sources, sinkStoresOffsets: true };
  const stored = await sink.storedOffsets(topic, partitions);
  if (stored !== null) {
    for (const p of partitions) {
      const o = stored.get(p);
      if (o !== undefined && /^\d+$/.test(o)) {
        offsets.set(p, o);
        sources.set(p, 'stored');
      }
    }
  }
  if (stored === null || fallback === 'committed') {
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    for (const t of committed) {
      if (t.topic !== topic) continue;
      for (const c of t.partitions) {
        if (partitions.includes(c.partition) && !offsets.has(c.partition) && /^\d+$/.test(c.offset)) {
          offsets.set(c.partition, c.offset);
          sources.set(c.partition, 'committed');
        }
      }
    }
  }
  const missing = partitions.filter((p) => !offsets.has(p));
  if (missing.length > 0) {
    const start = fallback === 'committed' ? 'earliest' : (sink.startPosition?.() ?? 'earliest');
    if (start === 'earliest') {
      for (const w of await admin.fetchTopicOffsets(topic)) {
        if (missing.includes(w.partition)) {
          offsets.set(w.partition, w.low);
          sources.set(w.partition, 'earliest');
        }
      }
    } else {
      // The client answers "no record that recent" with the high watermark of a second, later
      // request, so a record appended in between would be skipped: the high watermark read before
      // the lookup bounds the answer (a record past it was appended since, so it is recent).
      const before = new Map((await admin.fetchTopicOffsets(topic)).map((w) => [w.partition, BigInt(w.high)]));
      for (const w of await admin.fetchTopicOffsetsByTimestamp(topic, start.timestampMs)) {
        if (missing.includes(w.partition)) {
          const high = before.get(w.partition);
          const found = BigInt(w.offset);
          offsets.set(w.partition, (high !== undefined && high < found ? high : found).toString());
          sources.set(w.partition, 'timestamp');
        }
      }
    }
  }
  const unresolved = partitions.filter((p) => !offsets.has(p));
  if (unresolved.length > 0) throw new Error(`no start offset found for ${topic} partitions ${unresolved.join(', ')}`);
  return { offsets, sources, sinkStoresOffsets: stored !== null };
}
