import { randomBytes } from 'node:crypto';
import type { TableLayout } from '../../src/cdc/avro/schema.js';
import { OID } from '../../src/cdc/render.js';
import type { Config } from '../../src/config/load.js';
import { deletePipelineTopics } from '../../src/kafka/admin.js';
import { createConsumer, createKafka, idempotentProducer } from '../../src/kafka/client.js';
import { SchemaRegistry } from '../../src/kafka/schema-registry/registry.js';
import type { TestEnv } from '../helpers/env.js';

/**
 * The Avro CDC tests' helpers: a configuration writing Avro into topics and a slot of its own
 * beside the test environment's JSON one, and a read_committed reader that decodes keys and values
 * with the library's stock AvroDeserializer (as any Confluent-compatible consumer would).
 */

/** engagement_events as the CDC sees it (init.sql). */
export const EVENTS: TableLayout = {
  schema: 'public',
  table: 'engagement_events',
  columns: [
    { name: 'id', typeOid: OID.int8 },
    { name: 'content_id', typeOid: OID.uuid },
    { name: 'user_id', typeOid: OID.uuid },
    { name: 'event_type', typeOid: 25 },
    { name: 'event_ts', typeOid: OID.timestamptz },
    { name: 'duration_ms', typeOid: OID.int4 },
    { name: 'device', typeOid: 25 },
    { name: 'raw_payload', typeOid: OID.jsonb },
  ],
  primaryKey: ['id'],
};

export interface AvroRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Record<string, unknown> | null;
  value: Record<string, unknown> | null;
  /** The writer schema id the value names (null for a tombstone). */
  schemaId: number | null;
  bytes: number;
}

/** `env`'s config with KAFKA_VALUE_FORMAT=avro and topics, slot and client id of its own. */
export function avroConfig(env: TestEnv, name: string, overrides: Partial<Config> = {}): Config {
  const id = `${env.id}_${name}`;
  return {
    ...env.config,
    KAFKA_VALUE_FORMAT: 'avro',
    KAFKA_TOPIC_ENGAGEMENT_EVENTS: `${id}.events`,
    KAFKA_TOPIC_CONTENT: `${id}.content`,
    KAFKA_TOPIC_ENRICHED: `${id}.enriched`,
    KAFKA_TOPIC_DLQ: `${id}.dlq`,
    KAFKA_TOPIC_CDC_POSITION: `${id}.cdc-position`,
    KAFKA_CLIENT_ID: `engage-${id}`,
    CDC_SLOT_NAME: `slot_${id}`,
    ...overrides,
  };
}

/** Deletes the config's topics and its subjects in the registry. */
export async function dropAvroConfig(config: Config): Promise<void> {
  await deletePipelineTopics(config).catch(() => undefined);
  const sr = await SchemaRegistry.connect({ url: config.schemaRegistryUrl, compatibility: 'BACKWARD' });
  for (const topic of [config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, config.KAFKA_TOPIC_CONTENT])
    for (const role of ['key', 'value'])
      for (const permanent of [false, true])
        await sr.client.deleteSubject(`${topic}-${role}`, permanent).catch(() => undefined);
}

const END_MARKER = '__end_marker';

/**
 * Everything committed to `topics` so far: writes an end marker (not Avro: skipped by `readAvro`)
 * to each partition, then reads until every marker arrived. Call it when no transaction is open on
 * the topics (the CDC stopped), else the markers wait behind it.
 */
export async function readAvroToEnd(config: Config, topics: string[]): Promise<AvroRecord[]> {
  const producer = idempotentProducer(createKafka(config, `${config.KAFKA_CLIENT_ID}-test-marker`));
  await producer.connect();
  try {
    for (const topic of topics)
      await producer.send({
        topic,
        messages: Array.from({ length: config.KAFKA_TOPIC_PARTITIONS }, (_, p) => ({
          partition: p,
          key: END_MARKER,
          value: null,
        })),
      });
  } finally {
    await producer.disconnect();
  }
  return readAvro(config, topics, (_r, ends) => ends.size === topics.length * config.KAFKA_TOPIC_PARTITIONS);
}

/** avsc decodes records into instances of a class per record type: their fields as plain data. */
export function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}

/**
 * Reads `topics` from the beginning (read_committed), decoding with the stock deserializers, until
 * `done(records)` says true; throws after `timeoutMs`.
 */
export async function readAvro(
  config: Config,
  topics: string[],
  done: (records: AvroRecord[], ends: ReadonlySet<string>) => boolean,
  timeoutMs = 60_000,
): Promise<AvroRecord[]> {
  const ends = new Set<string>();
  const sr = await SchemaRegistry.connect({ url: config.schemaRegistryUrl, compatibility: 'BACKWARD' });
  const { avro, serde } = sr.serdes;
  const keys = new avro.AvroDeserializer(sr.client, serde.SerdeType.KEY, {});
  const values = new avro.AvroDeserializer(sr.client, serde.SerdeType.VALUE, {});
  const consumer = createConsumer(createKafka(config, `${config.KAFKA_CLIENT_ID}-avro-reader`), {
    groupId: `test-avro-reader-${randomBytes(4).toString('hex')}`,
    fromBeginning: true,
    readCommitted: true,
  });
  const records: AvroRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics });
    let resolveDone: () => void = () => undefined;
    let rejectDone: (err: unknown) => void = () => undefined;
    const allIn = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        try {
          for (const m of batch.messages) {
            if (m.key?.toString() === END_MARKER) {
              ends.add(`${batch.topic}|${batch.partition}`);
              continue;
            }
            const key = m.key ? (plain(await keys.deserialize(batch.topic, m.key)) as Record<string, unknown>) : null;
            const value = m.value
              ? (plain(await values.deserialize(batch.topic, m.value)) as Record<string, unknown>)
              : null;
            records.push({
              topic: batch.topic,
              partition: batch.partition,
              offset: m.offset,
              key,
              value,
              schemaId: m.value ? m.value.readInt32BE(1) : null,
              bytes: (m.key?.length ?? 0) + (m.value?.length ?? 0),
            });
          }
          if (done(records, ends)) resolveDone();
        } catch (err) {
          rejectDone(err);
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      allIn,
      new Promise<void>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`readAvro: condition not met after ${timeoutMs} ms (${records.length} records read)`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return records;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}
