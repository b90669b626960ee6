import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Config } from '../../src/config/load.js';
import type { ChangeEvent } from '../../src/core/types.js';
import { createConsumer, createKafka, idempotentProducer } from '../../src/kafka/client.js';

/** Shared helpers of the CDC tests: a read_committed topic reader and a pg client (waits: ../helpers/wait.ts). */

export interface Record {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: ChangeEvent | null;
  /** The record's key + value size in bytes, as stored in Kafka. */
  bytes: number;
}

export async function pgClient(config: Config): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: config.databaseUrl });
  await c.connect();
  return c;
}

/**
 * Reads `topics` from the beginning with read_committed and calls `done(records)` after each batch;
 * returns the records once it says true. With `onRecord`, each record goes to it instead and none
 * is kept (`done` then sees an empty list): for topics too large to hold. For an exact "everything
 * is here" the caller can write an end marker per partition (see `readToEnd`).
 */
export async function readTopics(
  config: Config,
  topics: string[],
  done: (records: Record[]) => boolean,
  timeoutMs = 30000,
  onRecord?: (r: Record) => void,
): Promise<Record[]> {
  const kafka = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-reader`);
  const consumer = createConsumer(kafka, {
    groupId: `test-reader-${randomBytes(4).toString('hex')}`,
    fromBeginning: true,
    readCommitted: true,
  });
  const records: Record[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics });
    let finished = false;
    let resolveDone: () => void = () => undefined;
    const allIn = new Promise<void>((r) => {
      resolveDone = r;
    });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const r: Record = {
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            key: m.key ? m.key.toString() : null,
            value: m.value ? (JSON.parse(m.value.toString()) as ChangeEvent) : null,
            bytes: (m.key?.length ?? 0) + (m.value?.length ?? 0),
          };
          if (onRecord) onRecord(r);
          else records.push(r);
        }
        if (!finished && done(records)) {
          finished = true;
          resolveDone();
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allIn,
      new Promise<void>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`readTopics: condition not met after ${timeoutMs} ms (${records.length} records read)`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return records;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

/**
 * Everything committed to `topic` so far, exactly: writes a non-transactional end marker to each
 * partition, then reads read_committed until every partition's marker arrived. Call it when no
 * transaction is open on the topic any more (the CDC stopped), else the markers wait behind it.
 */
export async function readToEnd(
  config: Config,
  topic: string,
  partitions: number,
  timeoutMs = 60000,
  /** Given, each record goes to it and none is kept (the result is empty). */
  onRecord?: (r: Record) => void,
): Promise<Record[]> {
  const marker = `__end_marker_${randomBytes(4).toString('hex')}`;
  const producer = idempotentProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-test-marker`));
  await producer.connect();
  try {
    await producer.send({
      topic,
      messages: Array.from({ length: partitions }, (_, p) => ({ partition: p, key: marker, value: '{}' })),
    });
  } finally {
    await producer.disconnect();
  }
  const seen = new Set<number>();
  const kept: Record[] = [];
  await readTopics(
    config,
    [topic],
    () => seen.size === partitions,
    timeoutMs,
    (r) => {
      if (r.key === marker) seen.add(r.partition);
      else if (onRecord) onRecord(r);
      else kept.push(r);
    },
  );
  return kept;
}
