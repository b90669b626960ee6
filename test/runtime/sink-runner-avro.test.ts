import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { createLogger } from '../../src/core/logger.js';
import { ENRICHED_AVRO_SCHEMA, toEnrichedAvro } from '../../src/core/enriched-avro.js';
import { registry as metricsRegistry } from '../../src/core/metrics.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import type { EncodedBatch, EncodedWriteResult, SinkFactory } from '../../src/core/sink-contract.js';
import { avroOverrides } from '../helpers/avro-fixtures.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memorySink, memorySinkFactory } from '../helpers/memory-sink.js';
import { waitFor } from '../helpers/wait.js';
import { enrichedEvent, eventMessages, produce, readDlq, waitCaughtUp } from '../helpers/sink-harness.js';

/**
 * The sink runtime with KAFKA_VALUE_FORMAT=avro on the real stack: Avro enriched records (the
 * processor's schema, registered on the real registry) reach the sink as the same EnrichedEvent
 * objects JSON mode gives — raw_payload and extra parsed back from their JSON text — JSON records on
 * the same topic (written before a switch) too; bytes that are neither go to the DLQ with
 * DECODE_FAILED and their original bytes; a sink's fast path for undecoded bytes is not offered Avro.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-sink-runner-avro');
let env: TestEnv;

before(async () => {
  env = await createTestEnv(avroOverrides());
});
after(async () => {
  await env.cleanup();
});

const plain = (e: EnrichedEvent): unknown => JSON.parse(JSON.stringify(e)) as unknown;

test(
  'Avro and JSON records reach the sink as the same events; undecodable bytes go to the DLQ',
  { timeout: 60000 },
  async () => {
    const config = ownTopics(env, 'avro');
    const topic = config.KAFKA_TOPIC_ENRICHED;
    const writer = await (await connectConfiguredRegistry(config)).writer(topic, 'value', ENRICHED_AVRO_SCHEMA);
    const events = [
      enrichedEvent({ raw_payload: { nested: [1, 'two'] }, extra: { campaign: 'spring' } }),
      enrichedEvent({ raw_payload: 'not json', quality_flags: ['invalid_raw_payload'], user_id: null }),
      enrichedEvent({ duration_ms: null, engagement_seconds: null, engagement_pct: null, content_type: null }),
    ];
    const json = enrichedEvent();
    const undecodable = Buffer.concat([writer.encode(toEnrichedAvro(enrichedEvent())).subarray(0, 9)]);
    const store = createMemoryStore();
    let fastOffered = 0;
    const factory: SinkFactory = {
      name: 'mem-avro',
      batching: () => ({ maxRecords: 100, maxWaitMs: 50 }),
      create: () => {
        const sink = memorySink({ name: 'mem-avro', variant: 'offsets', store });
        const writeEncoded = async (_b: EncodedBatch): Promise<EncodedWriteResult> => {
          fastOffered++;
          return { kind: 'needs-check' };
        };
        return Object.assign(sink, { writeEncoded });
      },
    };
    const runner = await startSinkRunner(config, factory, log);
    try {
      await produce(config, topic, [
        ...events.map((e) => ({ key: e.content_id, value: writer.encode(toEnrichedAvro(e)), partition: 0 })),
        ...eventMessages([json], 0),
        { key: 'bad', value: undecodable, partition: 0 },
      ]);
      await waitCaughtUp(runner, config, topic);
      assert.deepEqual(
        store.appended.map((r) => plain(r.event)),
        [...events, json].map(plain),
        'the same events as JSON gives, in offset order',
      );
      assert.equal(store.appended[0]?.key, events[0]?.content_id);
      assert.equal(fastOffered, 0, 'the fast path for undecoded bytes is not used in Avro mode');
      const dlq = await readDlq(config);
      assert.deepEqual(
        dlq.map((e) => [e.code, e.stage, e.offset]),
        [['DECODE_FAILED', 'sink:mem-avro', '4']],
      );
      assert.ok(Buffer.from(dlq[0]?.value_base64 ?? '', 'base64').equals(undecodable), 'the original bytes');
      const fast = await metricsRegistry.getSingleMetric('engage_sink_fast_path_batches_total')?.get();
      assert.equal((fast?.values ?? []).filter((v) => v.labels.sink === 'mem-avro').length, 0);
    } finally {
      await runner.stop();
    }
  },
);

test(
  'a registry that does not answer is an outage: nothing is parked, and the records are read again once it answers',
  { timeout: 90000 },
  async () => {
    const config = ownTopics(env, 'outage');
    const topic = config.KAFKA_TOPIC_ENRICHED;
    await ensureTopics(config);
    const writer = await (await connectConfiguredRegistry(config)).writer(topic, 'value', ENRICHED_AVRO_SCHEMA);
    const events = [enrichedEvent(), enrichedEvent(), enrichedEvent()];
    await produce(
      config,
      topic,
      events.map((e) => ({ key: e.content_id, value: writer.encode(toEnrichedAvro(e)), partition: 0 })),
    );
    const warnings: string[] = [];
    const captured = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const store = createMemoryStore();
    const factory = memorySinkFactory({
      name: 'mem-outage',
      variant: 'offsets',
      store,
      batching: { maxRecords: 100, maxWaitMs: 50 },
    });
    // Nothing listens on port 9: every schema lookup fails as an outage does.
    const down = { ...config, schemaRegistryUrl: 'http://127.0.0.1:9/apis/ccompat/v7' };
    const first = await startSinkRunner(down, factory, captured);
    try {
      await waitFor(
        'the batch waiting for the registry',
        () => warnings.some((w) => w.includes('cannot decode the batch yet')),
        { timeoutMs: 30000 },
      );
      assert.equal(store.appended.length, 0);
      assert.deepEqual(await readDlq(config), [], 'nothing parked while the registry is away');
    } finally {
      await first.stop();
    }
    const second = await startSinkRunner(config, factory, log);
    try {
      await waitCaughtUp(second, config, topic);
      assert.deepEqual(
        store.appended.map((r) => plain(r.event)),
        events.map(plain),
        'each record once, none lost',
      );
      assert.deepEqual(await readDlq(config), []);
    } finally {
      await second.stop();
    }
  },
);
