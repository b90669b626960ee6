import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import type { DlqEntry, EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { AvroReader } from '../../src/kafka/schema-registry/avro-reader.js';
import { startProcessor, type Processor } from '../../src/processor/processor.js';
import { AvroInput, avroOverrides } from '../helpers/avro-fixtures.js';
import { createTestEnv, type TestEnv } from '../helpers/env.js';
import { waitFor } from '../helpers/wait.js';
import {
  InputWriter,
  eventMsg,
  parseValues,
  readTopic,
  testContent as content,
  testUuid as uuid,
} from './kafka-helpers.js';

/**
 * The stream processor with KAFKA_VALUE_FORMAT=avro against the real Kafka and registry: the CDC's
 * Debezium-compatible Avro events and content in, Avro enriched records out (read here by the
 * library's stock AvroDeserializer), the same fields as JSON mode (event_id "1" from an int8 id
 * decoded as a number); a JSON record met in Avro mode (a topic written before the switch) is
 * enriched too; an undecodable Avro record goes to the DLQ with DECODE_FAILED, its bytes and its
 * Avro key kept.
 */

describe('stream processor in Avro mode (real Kafka and registry)', { timeout: 120000 }, () => {
  let env: TestEnv;
  let input: InputWriter;
  let avro: AvroInput;
  let proc: Processor | undefined;
  const log = createLogger('warn', 'test-processor-avro');

  /** The enriched topic's records, each decoded by the stock deserializer. */
  async function enriched(): Promise<Array<{ key: string; bytes: Buffer; event: EnrichedEvent }>> {
    const { avro: serdes, serde } = avro.registry.serdes;
    const stock = new serdes.AvroDeserializer(avro.registry.client, serde.SerdeType.VALUE, {});
    const out = [];
    for (const m of await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_ENRICHED)) {
      const bytes = m.value as Buffer;
      const decoded: unknown = await stock.deserialize(env.config.KAFKA_TOPIC_ENRICHED, bytes);
      out.push({ key: String(m.key), bytes, event: JSON.parse(JSON.stringify(decoded)) as EnrichedEvent });
    }
    return out;
  }
  const waitEnriched = (ids: string[]) =>
    waitFor('enriched Avro records', enriched, {
      until: (r) => ids.every((id) => r.some((x) => x.event.event_id === id)),
      timeoutMs: 30000,
      everyMs: 300,
    });

  before(async () => {
    env = await createTestEnv({ ...avroOverrides(), CONTENT_WAIT_MS: '1500', PROCESSOR_SESSION_TIMEOUT_MS: '6000' });
    await ensureTopics(env.config);
    input = await InputWriter.open(env.config);
    avro = await AvroInput.open(env.config);
    await input.txn([avro.content(content(1, 100)), avro.content(content(2, null))]);
    proc = await startProcessor(env.config, log);
  });

  after(async () => {
    await proc?.stop();
    await input?.close();
    await env?.cleanup();
  });

  it('enriches Avro change events into Avro enriched records with the JSON mode fields', async () => {
    await input.txn([
      avro.event({ id: '1', content_id: uuid(1), duration_ms: 50000, event_ts: '2025-06-15T10:20:30.123456Z' }),
      avro.event({ id: '2', content_id: uuid(2), duration_ms: null, user_id: null }),
      avro.event({ id: '3', content_id: uuid(1), duration_ms: 150000, campaign: 'spring' }, { op: 'r', v2: true }),
    ]);
    const records = await waitEnriched(['1', '2', '3']);
    const byId = (id: string) => records.find((r) => r.event.event_id === id);
    for (const r of records) {
      assert.equal(r.bytes[0], 0, 'Confluent wire format');
      assert.equal(r.key, r.event.content_id, 'keyed by the content id as plain text');
    }
    const e1 = byId('1')?.event;
    assert.equal(e1?.event_id, '1', 'an int8 id decoded as a number gives the JSON mode event_id');
    assert.equal(e1?.engagement_pct, 50);
    assert.equal(e1?.event_ts, '2025-06-15T10:20:30.123456Z');
    assert.equal(e1?.event_hour, '2025-06-15T10:00:00.000Z');
    assert.equal(e1?.content_slug, 'c-1');
    assert.equal(e1?.raw_payload, '{"src":"test"}', 'raw_payload travels as JSON text');
    assert.equal(e1?.extra, '{}', 'no extra column: no prototype method read as one');
    assert.deepEqual(e1?.quality_flags, []);
    assert.equal(byId('2')?.event.duration_ms, null);
    assert.deepEqual(byId('2')?.event.quality_flags, ['missing_duration', 'missing_user', 'missing_length']);
    assert.equal(byId('3')?.event.extra, '{"campaign":"spring"}', 'a column added later is in extra');
    assert.deepEqual(byId('3')?.event.quality_flags, ['pct_above_100']);
    const subjects = await avro.registry.client.getAllSubjects();
    assert.ok(subjects.includes(`${env.config.KAFKA_TOPIC_ENRICHED}-value`));
  });

  it('reads a JSON change event met in Avro mode (a topic written before the switch)', async () => {
    await input.txn([eventMsg(env.config, { id: '20', content_id: uuid(1), duration_ms: 10000 })]);
    const records = await waitEnriched(['20']);
    const r = records.find((x) => x.event.event_id === '20');
    assert.equal(r?.bytes[0], 0, 'written in Avro like any other');
    assert.equal(r?.event.engagement_pct, 10);
  });

  it('parks an undecodable Avro record with DECODE_FAILED, its bytes and its Avro key', async () => {
    const good = avro.event({ id: '30', content_id: uuid(1) });
    const key = good.key as Buffer;
    const unknownId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 2, 4, 6]);
    const truncated = (good.value as Buffer).subarray(0, 12);
    const topic = env.config.KAFKA_TOPIC_ENGAGEMENT_EVENTS;
    await input.txn([
      { topic, key, value: unknownId },
      { topic, key, value: truncated },
      avro.event({ id: '31', content_id: uuid(1) }),
    ]);
    await waitEnriched(['31']);
    const dlq = await waitFor(
      'two DLQ entries',
      async () => parseValues<DlqEntry>(await readTopic(env.config.kafkaBrokers, env.config.KAFKA_TOPIC_DLQ)),
      { until: (d) => d.length >= 2, timeoutMs: 20000 },
    );
    const values = dlq.map((e) => Buffer.from(e.value_base64 ?? '', 'base64'));
    assert.deepEqual(
      dlq.map((e) => [e.code, e.reason.split(':')[0]]),
      [
        ['DECODE_FAILED', 'UNDECODABLE'],
        ['DECODE_FAILED', 'UNDECODABLE'],
      ],
    );
    assert.ok(values.some((v) => v.equals(unknownId)) && values.some((v) => v.equals(truncated)), 'original bytes');
    for (const e of dlq) {
      assert.equal(e.key, null);
      assert.ok(Buffer.from(e.key_base64 ?? '', 'base64').equals(key), 'the Avro key kept as bytes');
    }
    assert.equal(AvroReader.schemaIdOf(values.find((v) => v.equals(truncated)) as Buffer) !== null, true);
  });
});
