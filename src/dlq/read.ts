import { randomBytes } from 'node:crypto';
import type { Config } from '../config/load.js';
import { PipelineError } from '../core/errors.js';
import { kafkaUnreachable } from '../kafka/admin.js';
import { createConsumer, createKafka, type AssignedPartition } from '../kafka/client.js';

/**
 * Reads a bounded range of a topic once, without committing anything: from `from` (per partition,
 * default the low watermark) up to the high watermarks seen at the start. A throwaway consumer
 * group positions the partitions explicitly; it never commits, so it leaves nothing behind.
 *
 * The end is the high watermark, or — since a read_committed consumer never sees transaction
 * markers or aborted records, which may sit at a partition's tail — a partition with no new message
 * for `idleMs` once it was assigned. `lastOffsets` reports the last record actually read.
 */

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
}

export interface ReadRangeOptions {
  from?: Map<number, string>;
  /** No message for this long on a partition below its high watermark ends it (default 1500 ms). */
  idleMs?: number;
  /** Overall bound (default 60 s): past it, a TIMEOUT error. */
  timeoutMs?: number;
}

export interface ReadRangeResult {
  /** Per partition: the high watermark when the read started. */
  highWatermarks: Map<number, string>;
  /** Per partition: the last offset read, when any. */
  lastOffsets: Map<number, string>;
  count: number;
}

export async function readTopicRange(
  config: Config,
  topic: string,
  onMessage: (m: ReadMessage) => void,
  opts: ReadRangeOptions = {},
): Promise<ReadRangeResult> {
  const idleMs = opts.idleMs ?? 1500;
  const kafka = createKafka(config, `${config.KAFKA_CLIENT_ID}-reader`);
  const admin = kafka.admin();
  let watermarks: Array<{ partition: number; low: string; high: string }>;
  try {
    await admin.connect();
    watermarks = await admin.fetchTopicOffsets(topic);
  } catch (err) {
    throw kafkaUnreachable(config, err);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const highWatermarks = new Map(watermarks.map((w) => [w.partition, w.high]));
  const start = new Map<number, bigint>();
  for (const w of watermarks) {
    const from = opts.from?.get(w.partition);
    start.set(w.partition, BigInt(from !== undefined && BigInt(from) > BigInt(w.low) ? from : w.low));
  }
  const lastOffsets = new Map<number, string>();
  const pending = new Set(
    watermarks.filter((w) => (start.get(w.partition) ?? 0n) < BigInt(w.high)).map((w) => w.partition),
  );
  const result = (): ReadRangeResult => ({ highWatermarks, lastOffsets, count });
  let count = 0;
  if (pending.size === 0) return result();

  const lastSeen = new Map<number, number>();
  let finished = false;
  const consumer = createConsumer(kafka, {
    groupId: `engage-reader-${randomBytes(6).toString('hex')}`,
    readCommitted: true,
    autoCommit: false,
    maxBatchSize: 500,
    onRebalance: async (kind, parts: AssignedPartition[]) => {
      if (kind === 'revoke') return;
      for (const p of parts) lastSeen.set(p.partition, Date.now());
      return parts.map((p) => ({
        topic: p.topic,
        partition: p.partition,
        offset: Number(start.get(p.partition) ?? 0n),
      }));
    },
  });
  await consumer.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(
        () =>
          reject(
            new PipelineError('TIMEOUT', `reading ${topic} did not finish within ${opts.timeoutMs ?? 60000} ms`, {
              retriable: true,
            }),
          ),
        opts.timeoutMs ?? 60000,
      );
      const finish = () => {
        finished = true;
        clearTimeout(timeout);
        clearInterval(idle);
        resolve();
      };
      const idle = setInterval(
        () => {
          const now = Date.now();
          for (const p of [...pending]) {
            const seen = lastSeen.get(p);
            if (seen !== undefined && now - seen >= idleMs) pending.delete(p);
          }
          if (pending.size === 0) finish();
        },
        Math.max(50, Math.floor(idleMs / 4)),
      );
      consumer
        .subscribe({ topics: [topic] })
        .then(() =>
          consumer.run({
            eachBatch: async ({ batch }) => {
              if (finished) return;
              const high = BigInt(highWatermarks.get(batch.partition) ?? '0');
              lastSeen.set(batch.partition, Date.now());
              for (const m of batch.messages) {
                if (BigInt(m.offset) >= high) {
                  pending.delete(batch.partition);
                  break;
                }
                count++;
                lastOffsets.set(batch.partition, m.offset);
                onMessage({
                  topic,
                  partition: batch.partition,
                  offset: m.offset,
                  key: m.key,
                  value: m.value,
                  timestamp: m.timestamp,
                });
                if (BigInt(m.offset) + 1n >= high) pending.delete(batch.partition);
              }
              if (pending.size === 0) finish();
            },
          }),
        )
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return result();
}
