import { KafkaJS, RdKafka } from '@confluentinc/kafka-javascript';
import type { Config } from '../../src/config/load.js';
import type { ContentRow } from '../../src/core/types.js';
import { createKafka, transactionalProducer, type Producer } from '../../src/kafka/client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Test helpers for the processor: Debezium-shaped change events, a transactional producer for the
 * input topics (the CDC's contract), and read_committed readers of the output topics.
 */

let seq = 0;
/** Source LSNs increase with each change built, as the CDC's do in WAL order. */
let lsn = 1_000_000;

export function changeValue(
  table: 'engagement_events' | 'content',
  op: 'c' | 'r' | 'u' | 'd',
  before: unknown,
  after: unknown,
  tsMs = Date.now(),
): string {
  return JSON.stringify({
    before,
    after,
    source: {
      version: '1.0.0-test',
      connector: 'postgresql',
      name: 'engage',
      ts_ms: tsMs,
      snapshot: 'false',
      db: 'engagement_db',
      schema: 'public',
      table,
      txId: 1,
      lsn: (lsn += 64),
    },
    op,
    ts_ms: tsMs + 1,
  });
}

/** A content id of the tests: a fixed UUID per number. */
export const testUuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** Content row `n` of the tests, of the given length. */
export const testContent = (n: number, length: number | null): ContentRow => ({
  id: testUuid(n),
  slug: `c-${n}`,
  title: `Content ${n}`,
  content_type: 'video',
  length_seconds: length,
  publish_ts: '2025-01-01T00:00:00.000000Z',
});

export interface EventFields {
  id: string;
  content_id: string | null;
  duration_ms?: number | null;
  event_type?: string | null;
  event_ts?: string | null;
  [extra: string]: unknown;
}

export function eventRow(f: EventFields): Record<string, unknown> {
  return {
    user_id: '22222222-2222-4222-8222-222222222222',
    event_type: 'play',
    event_ts: new Date(Date.now() - 60000).toISOString(),
    duration_ms: 30000,
    device: 'web',
    raw_payload: '{"src":"test"}',
    ...f,
  };
}

export interface Msg {
  topic: string;
  key: string | Buffer | null;
  value: string | Buffer | null;
}

export const eventMsg = (config: Config, f: EventFields, op: 'c' | 'r' = 'c'): Msg => ({
  topic: config.KAFKA_TOPIC_ENGAGEMENT_EVENTS,
  key: JSON.stringify({ id: f.id }),
  value: changeValue('engagement_events', op, null, eventRow(f)),
});

export const contentMsg = (config: Config, row: ContentRow, op: 'c' | 'u' = 'c'): Msg => ({
  topic: config.KAFKA_TOPIC_CONTENT,
  key: JSON.stringify({ id: row.id }),
  value: changeValue('content', op, null, row),
});

export class InputWriter {
  private constructor(private readonly producer: Producer) {}

  static async open(config: Config): Promise<InputWriter> {
    const producer = transactionalProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-test-input`), {
      transactionalId: `${config.KAFKA_CLIENT_ID}-test-input-${process.pid}-${++seq}`,
    });
    await producer.connect();
    return new InputWriter(producer);
  }

  /** Writes the messages in ONE Kafka transaction, as the CDC does for one batch. */
  async txn(messages: Msg[]): Promise<void> {
    const tx = await this.producer.transaction();
    try {
      const byTopic = new Map<string, Array<{ key: string | Buffer | null; value: string | Buffer | null }>>();
      for (const m of messages) {
        const list = byTopic.get(m.topic) ?? [];
        list.push({ key: m.key, value: m.value });
        byTopic.set(m.topic, list);
      }
      for (const [topic, msgs] of byTopic) await tx.send({ topic, messages: msgs as KafkaJS.Message[] });
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => undefined);
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }
}

const call = <T>(fn: (cb: (err: unknown, v: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

/** Every committed record of `topic` up to its current last stable offsets (read_committed). */
export async function readTopic(brokers: string[], topic: string, timeoutMs = 20000): Promise<RdKafka.Message[]> {
  const c = new RdKafka.KafkaConsumer({
    'bootstrap.servers': brokers.join(','),
    'group.id': `test-reader-${process.pid}-${++seq}`,
    'enable.auto.commit': false,
    'isolation.level': 'read_committed',
    'enable.partition.eof': true,
  });
  await call<unknown>((cb) => c.connect({ timeout: 10000 }, cb));
  try {
    const meta = await call<RdKafka.Metadata>((cb) => c.getMetadata({ topic, timeout: 10000 }, cb));
    const partitions = (meta.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => p.id);
    const ends = new Map<number, number>();
    for (const p of partitions)
      ends.set(
        p,
        (await call<RdKafka.WatermarkOffsets>((cb) => c.queryWatermarkOffsets(topic, p, 10000, cb))).highOffset,
      );
    const pos = new Map<number, number>();
    c.on('partition.eof', (e) => pos.set(e.partition, Math.max(pos.get(e.partition) ?? 0, e.offset)));
    c.assign(partitions.map((partition) => ({ topic, partition, offset: -2 })));
    c.setDefaultConsumeTimeout(100);
    const out: RdKafka.Message[] = [];
    const deadline = Date.now() + timeoutMs;
    const done = () => [...ends].every(([p, end]) => (pos.get(p) ?? 0) >= end);
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`readTopic ${topic}: not at the end after ${timeoutMs} ms`);
      const msgs = await call<RdKafka.Message[]>((cb) => c.consume(1000, cb));
      for (const m of msgs) {
        out.push(m);
        pos.set(m.partition, Math.max(pos.get(m.partition) ?? 0, m.offset + 1));
      }
      for (const p of c.position())
        if (typeof p.offset === 'number') pos.set(p.partition, Math.max(pos.get(p.partition) ?? 0, p.offset));
    }
    return out;
  } finally {
    await new Promise<void>((resolve) => c.disconnect(() => resolve()));
  }
}

export function parseValues<T>(msgs: RdKafka.Message[]): T[] {
  return msgs.filter((m) => m.value !== null).map((m) => JSON.parse((m.value as Buffer).toString('utf8')) as T);
}

/** Re-reads `topic` until `ready(values)` holds; returns the last read. Throws after `timeoutMs`. */
export async function waitForTopic<T>(
  brokers: string[],
  topic: string,
  ready: (values: T[]) => boolean,
  timeoutMs = 20000,
): Promise<T[]> {
  return waitFor(`records on ${topic}`, async () => parseValues<T>(await readTopic(brokers, topic)), {
    until: ready,
    timeoutMs,
    everyMs: 300,
  });
}

/** The group's committed offsets of `topic`, by partition. */
export async function committedOffsets(config: Config, groupId: string, topic: string): Promise<Map<number, number>> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    const res = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map((res[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  } finally {
    await admin.disconnect();
  }
}

/**
 * Waits until the group has committed, on every partition of `topic`, past the last record the
 * topic holds now (last data offset + 1; transaction markers after it do not count).
 */
export async function waitForGroupCaughtUp(
  config: Config,
  groupId: string,
  topic: string,
  timeoutMs = 30000,
): Promise<Map<number, number>> {
  const last = new Map<number, number>();
  for (const m of await readTopic(config.kafkaBrokers, topic))
    last.set(m.partition, Math.max(last.get(m.partition) ?? -1, m.offset));
  return waitFor(
    `group ${groupId} to commit past the last record of every partition of ${topic}`,
    () => committedOffsets(config, groupId, topic),
    {
      until: (committed) => [...last].every(([p, off]) => (committed.get(p) ?? -1) >= off + 1),
      timeoutMs,
      everyMs: 300,
      describe: () => ({ last: [...last] }),
    },
  );
}

/**
 * Waits until no transaction is open on `topic`: its last stable offsets reach the high
 * watermarks seen at the call. A crashed producer's open transaction holds read_committed readers
 * back until the broker aborts it (transaction timeout + the broker's cleanup interval).
 */
export async function waitForSettled(config: Config, topic: string, timeoutMs = 40000): Promise<void> {
  const admin = createKafka(config, `${config.KAFKA_CLIENT_ID}-test-admin`).admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(topic, { isolationLevel: KafkaJS.IsolationLevel.READ_UNCOMMITTED });
    await waitFor(
      `no open transaction on ${topic}`,
      async () => {
        const stable = await admin.fetchTopicOffsets(topic, { isolationLevel: KafkaJS.IsolationLevel.READ_COMMITTED });
        return high.every((h) => Number(stable.find((s) => s.partition === h.partition)?.high ?? -1) >= Number(h.high));
      },
      { timeoutMs, everyMs: 250 },
    );
  } finally {
    await admin.disconnect();
  }
}
