import { randomUUID } from 'node:crypto';
import type { Config } from '../../src/config/load.js';
import { createKafka, idempotentProducer } from '../../src/kafka/client.js';
import type { AvroWriter } from '../../src/kafka/schema-registry/avro-writer.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import { CONTENT_ENVELOPE, CONTENT_KEY, EVENT_ENVELOPE, EVENT_KEY } from '../../test/helpers/avro-fixtures.js';

/**
 * The processor bench's input: `count` change events of `engagement_events` (and the content they
 * join) written straight to Kafka as the CDC writes them — Debezium JSON, or Debezium Avro through
 * the registry (int8 id → long, the schemas of test/helpers/avro-fixtures.ts).
 */

const TYPES = ['play', 'pause', 'finish', 'click'];

/** The change event as an object: `encode` makes it the format's bytes. */
function envelope(table: string, after: Record<string, unknown>, tsMs: number): Record<string, unknown> {
  return {
    before: null,
    after,
    source: {
      version: '1.0.0-bench',
      connector: 'postgresql',
      name: 'engage',
      ts_ms: tsMs,
      snapshot: 'false',
      db: 'engagement_db',
      schema: 'public',
      table,
      txId: 1000,
      lsn: 123456789,
      sequence: null,
    },
    op: 'c',
    ts_ms: tsMs + 2,
  };
}

export interface Encoders {
  eventKey(id: string): string | Buffer;
  event(env: Record<string, unknown>): string | Buffer;
  contentKey(id: string): string | Buffer;
  content(env: Record<string, unknown>): string | Buffer;
}

export const JSON_ENCODERS: Encoders = {
  eventKey: (id) => JSON.stringify({ id }),
  event: (env) => JSON.stringify(env),
  contentKey: (id) => JSON.stringify({ id }),
  content: (env) => JSON.stringify(env),
};

/** Debezium Avro as the CDC writes it (int8 id → long), the schemas registered for the bench's topics. */
export async function avroEncoders(config: Config): Promise<Encoders> {
  const sr = await connectConfiguredRegistry(config);
  const w = async (topic: string, role: 'key' | 'value', schema: object): Promise<AvroWriter> =>
    sr.writer(topic, role, schema as Record<string, unknown>);
  const [ev, evKey, ct, ctKey] = await Promise.all([
    w(config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, 'value', EVENT_ENVELOPE),
    w(config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, 'key', EVENT_KEY),
    w(config.KAFKA_TOPIC_CONTENT, 'value', CONTENT_ENVELOPE),
    w(config.KAFKA_TOPIC_CONTENT, 'key', CONTENT_KEY),
  ]);
  return {
    eventKey: (id) => evKey.encode({ id: Number(id) }),
    event: (env) =>
      ev.encode({ ...env, after: { ...(env.after as object), id: Number((env.after as { id: string }).id) } }),
    contentKey: (id) => ctKey.encode({ id }),
    content: (env) => ct.encode(env),
  };
}

export async function preloadChanges(
  config: Config,
  contentIds: string[],
  count: number,
  enc: Encoders,
): Promise<void> {
  const producer = idempotentProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-bench-load`));
  await producer.connect();
  try {
    const now = Date.now();
    await producer.send({
      topic: config.KAFKA_TOPIC_CONTENT,
      messages: contentIds.map((id, i) => ({
        key: enc.contentKey(id),
        value: enc.content(
          envelope(
            'content',
            {
              id,
              slug: `slug-${i}`,
              title: `Title ${i}`,
              content_type: 'podcast',
              length_seconds: 300 + i,
              publish_ts: '2024-01-01T00:00:00.000000Z',
            },
            now,
          ),
        ),
      })),
    });
    const users = Array.from({ length: 1000 }, () => randomUUID());
    for (let base = 0; base < count; base += 10_000) {
      const messages = [];
      for (let i = base; i < Math.min(count, base + 10_000); i++) {
        const row = {
          id: String(i + 1),
          content_id: contentIds[i % contentIds.length],
          user_id: users[i % users.length],
          event_type: TYPES[i % 4],
          event_ts: new Date(now - (i % 3600) * 1000).toISOString().replace('Z', '123Z'),
          duration_ms: (i * 37) % 600_000,
          device: i % 3 === 0 ? 'ios' : 'web',
          raw_payload: JSON.stringify({ session: `s-${i % 977}`, app_version: '5.2.1', referrer: 'home' }),
        };
        messages.push({ key: enc.eventKey(row.id), value: enc.event(envelope('engagement_events', row, now)) });
      }
      await producer.send({ topic: config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, messages });
    }
  } finally {
    await producer.disconnect();
  }
}
