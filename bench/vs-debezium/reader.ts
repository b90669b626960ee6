import { RdKafka } from '@confluentinc/kafka-javascript';
import { connectionProps, type KafkaConnection } from '../../src/kafka/client.js';
import { returnOnFirstMessage } from '../../src/kafka/consumer-props.js';

/**
 * The vs-debezium bench's one consumer: every partition of one topic from offset 0, read_committed
 * (what the pipeline's processor sees of a transactional producer), in rounds of `consume(n)` on
 * the project's Kafka library. No group, no commits; `fetch.wait.max.ms` 50 as the pipeline's own
 * consumers (src/kafka/consumer-props.ts): under read_committed a fetch is answered at a commit
 * only when its wait ends, so that bounds every transactional hop and is part of the latency.
 *
 * Contract: `onRecord(value, appendTs, now, partition, offset)` runs for every record with a value, in order of
 * arrival (appendTs is the broker's LogAppendTime on the bench's topics, now is when the round
 * arrived); `stop()` ends the loop and disconnects. The reader runs in the bench's own process,
 * whose CPU is not counted against any tool.
 */

type RawConsumer = InstanceType<typeof RdKafka.KafkaConsumer>;
export type OnRecord = (value: Buffer, appendTs: number, now: number, partition: number, offset: number) => void;

export class TopicReader {
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  private constructor(private readonly consumer: RawConsumer) {}

  static async start(
    conn: KafkaConnection,
    topic: string,
    partitions: number,
    onRecord: OnRecord,
  ): Promise<TopicReader> {
    const consumer = new RdKafka.KafkaConsumer(
      {
        ...connectionProps(conn),
        'client.id': 'bench-vs-debezium-reader',
        'group.id': `bench-vs-debezium-${process.pid}-${Date.now()}`,
        'enable.auto.commit': false,
        'isolation.level': 'read_committed',
        'fetch.wait.max.ms': 50,
        'fetch.min.bytes': 1,
        'auto.offset.reset': 'earliest',
      },
      {},
    );
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    consumer.setDefaultConsumeTimeout(200);
    returnOnFirstMessage(consumer);
    consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0 })));
    const reader = new TopicReader(consumer);
    reader.loop = reader.run(onRecord);
    return reader;
  }

  private async run(onRecord: OnRecord): Promise<void> {
    while (this.running) {
      const messages = await new Promise<RdKafka.Message[]>((resolve, reject) =>
        this.consumer.consume(2000, (err, m) => (err ? reject(err) : resolve(m))),
      );
      const now = Date.now();
      for (const m of messages) if (m.value) onRecord(m.value, m.timestamp ?? Number.NaN, now, m.partition, m.offset);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop.catch(() => undefined);
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }
}
