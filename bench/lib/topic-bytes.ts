import { RdKafka } from '@confluentinc/kafka-javascript';
import type { Config } from '../../src/config/load.js';
import { connectionProps } from '../../src/kafka/client.js';

/**
 * The bytes of a topic's records as a consumer receives them (value and key, before Kafka's own
 * batching and compression), averaged over up to `limit` committed records from the start of every
 * partition: the "bytes per event" of a format on the wire.
 */

export interface TopicBytes {
  records: number;
  valueBytesPerRecord: number;
  keyBytesPerRecord: number;
}

const call = <T>(fn: (cb: (err: unknown, v: T) => void) => void): Promise<T> =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

export async function topicBytes(
  config: Config,
  topic: string,
  limit = 50_000,
  timeoutMs = 60_000,
): Promise<TopicBytes> {
  const c = new RdKafka.KafkaConsumer({
    ...connectionProps(config),
    'group.id': `bench-bytes-${process.pid}-${Date.now()}`,
    'enable.auto.commit': false,
    'isolation.level': 'read_committed',
    'enable.partition.eof': true,
  });
  await call<unknown>((cb) => c.connect({ timeout: 10000 }, cb));
  try {
    const meta = await call<RdKafka.Metadata>((cb) => c.getMetadata({ topic, timeout: 10000 }, cb));
    const partitions = (meta.topics.find((t) => t.name === topic)?.partitions ?? []).map((p) => p.id);
    const eof = new Set<number>();
    c.on('partition.eof', (e) => eof.add(e.partition));
    c.assign(partitions.map((partition) => ({ topic, partition, offset: -2 })));
    c.setDefaultConsumeTimeout(200);
    let records = 0;
    let values = 0;
    let keys = 0;
    const deadline = Date.now() + timeoutMs;
    while (records < limit && eof.size < partitions.length && Date.now() < deadline) {
      for (const m of await call<RdKafka.Message[]>((cb) => c.consume(1000, cb))) {
        if (m.value === null) continue;
        records++;
        values += m.value.length;
        keys += m.key === null || m.key === undefined ? 0 : Buffer.byteLength(m.key);
      }
    }
    return {
      records,
      valueBytesPerRecord: records === 0 ? 0 : Math.round((values / records) * 10) / 10,
      keyBytesPerRecord: records === 0 ? 0 : Math.round((keys / records) * 10) / 10,
    };
  } finally {
    await new Promise<void>((resolve) => c.disconnect(() => resolve()));
  }
}
