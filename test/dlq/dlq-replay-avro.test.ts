import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ENRICHED_AVRO_SCHEMA, toEnrichedAvro } from '../../src/core/enriched-avro.js';
import { PipelineError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import type { EnrichedEvent } from '../../src/core/types.js';
import { readTopicRange } from '../../src/dlq/read.js';
import { formatListing, listDlq } from '../../src/dlq/list.js';
import { replayDlq } from '../../src/dlq/replay.js';
import { ensureTopics } from '../../src/kafka/admin.js';
import { connectConfiguredRegistry } from '../../src/kafka/schema-registry/from-config.js';
import { startProcessor } from '../../src/processor/processor.js';
import { startSinkRunner } from '../../src/runtime/sink-runner.js';
import { AvroInput, avroOverrides } from '../helpers/avro-fixtures.js';
import { createTestEnv, ownTopics, type TestEnv } from '../helpers/env.js';
import { createMemoryStore, memorySinkFactory } from '../helpers/memory-sink.js';
import { enrichedEvent, produce, readDlq, waitCaughtUp } from '../helpers/sink-harness.js';
import { waitFor } from '../helpers/wait.js';
import { InputWriter, testContent, testUuid } from '../processor/kafka-helpers.js';

/**
 * `engage dlq replay` in Avro mode (KAFKA_VALUE_FORMAT=avro) on the real stack and registry: the
 * parked bytes are the original Avro records, and a replay puts them back as they were — into a
 * fixed sink (decoded through the registry like any record), and, for the processor's entries,
 * onto the events topic with the original Avro key and value, where the processor enriches them.
 */

const log = createLogger(process.env.LOG_LEVEL ?? 'error', 'test-dlq-avro');
let env: TestEnv;

before(async () => {
  env = await createTestEnv({ ...avroOverrides(), CONTENT_WAIT_MS: '500' });
});
after(async () => {
  await env.cleanup();
});

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v)) as unknown;

test('sink entries of Avro records replay into the fixed sink as the same events', { timeout: 60000 }, async () => {
  const config = ownTopics(env, 'avro-sink');
  const writer = await (
    await connectConfiguredRegistry(config)
  ).writer(config.KAFKA_TOPIC_ENRICHED, 'value', ENRICHED_AVRO_SCHEMA);
  const events: EnrichedEvent[] = [1, 2, 3].map((i) => enrichedEvent({ raw_payload: { i }, extra: { n: i } }));
  const refusing = memorySinkFactory({
    name: 'mem-avro',
    variant: 'idempotent',
    store: createMemoryStore(),
    batching: { maxRecords: 100, maxWaitMs: 50 },
    beforeWrite: async (b) => {
      if (b.records.length > 0) throw new PipelineError('HTTP_REJECTED', 'the system refused the batch');
    },
  });
  const runner = await startSinkRunner(config, refusing, log);
  try {
    await produce(
      config,
      config.KAFKA_TOPIC_ENRICHED,
      events.map((e) => ({ key: e.content_id, value: writer.encode(toEnrichedAvro(e)), partition: 0 })),
    );
    await waitCaughtUp(runner, config, config.KAFKA_TOPIC_ENRICHED);
  } finally {
    await runner.stop();
  }
  const parked = await readDlq(config);
  assert.equal(parked.length, 3);
  for (const e of parked) assert.equal(Buffer.from(e.value_base64 ?? '', 'base64')[0], 0, 'the Avro bytes parked');
  const listing = await listDlq(config, { stage: 'sink:mem-avro' });
  assert.equal(listing.entries.length, 3);
  for (const { avro } of listing.entries) {
    assert.equal(avro?.schemaId, writer.id, 'the listing names the writer schema');
    const json = avro?.json;
    assert.ok(json !== undefined, `decoded through the registry (${avro?.error ?? ''})`);
    const decoded = JSON.parse(json) as EnrichedEvent;
    assert.ok(events.some((e) => decoded.event_id === e.event_id));
  }
  assert.match(formatListing(listing), new RegExp(`value=avro#${writer.id} \\{"schema_version":`));

  const store = createMemoryStore();
  const fixed = memorySinkFactory({ name: 'mem-avro', variant: 'idempotent', store });
  const result = await replayDlq(config, log, { stage: 'sink:mem-avro', factory: fixed });
  assert.deepEqual([result.replayed, result.failedAgain], [3, 0]);
  assert.deepEqual(
    [...store.byId.values()]
      .map(plain)
      .sort((a, b) => String((a as EnrichedEvent).event_id).localeCompare(String((b as EnrichedEvent).event_id))),
    events
      .map(plain)
      .sort((a, b) => String((a as EnrichedEvent).event_id).localeCompare(String((b as EnrichedEvent).event_id))),
  );
});

test(
  'a processor entry of an Avro event replays its key and value as they were; the processor then enriches it',
  { timeout: 90000 },
  async () => {
    const config = ownTopics(env, 'avro-proc');
    await ensureTopics(config);
    const input = await InputWriter.open(config);
    const avro = await AvroInput.open(config);
    const event = avro.event({ id: '77', content_id: testUuid(77), duration_ms: 6000 });
    let proc = await startProcessor(config, log);
    try {
      await input.txn([event]);
      const [entry] = await waitFor('the event parked for its unknown content', () => readDlq(config), {
        until: (d) => d.length > 0,
        timeoutMs: 30000,
      });
      assert.equal(entry?.code, 'UNKNOWN_CONTENT');
      assert.equal(entry?.key, null);
      assert.ok(Buffer.from(entry?.key_base64 ?? '', 'base64').equals(event.key as Buffer), 'the Avro key kept');
      await proc.stop();

      await input.txn([avro.content(testContent(77, 60))]);
      const result = await replayDlq(config, log, { stage: 'processor' });
      assert.equal(result.replayed, 1);
      const seen: Array<{ key: Buffer | null; value: Buffer | null }> = [];
      await readTopicRange(config, config.KAFKA_TOPIC_ENGAGEMENT_EVENTS, (m) =>
        seen.push({ key: m.key as Buffer, value: m.value }),
      );
      assert.equal(seen.length, 2, 'the original and its replay');
      assert.ok(
        seen[1]?.key?.equals(event.key as Buffer) && seen[1]?.value?.equals(event.value as Buffer),
        'the same bytes',
      );

      proc = await startProcessor(config, log);
      const reader = (await connectConfiguredRegistry(config)).reader(config.KAFKA_TOPIC_ENRICHED, 'value');
      const enriched = await waitFor(
        'the replayed event enriched',
        async () => {
          const values: Buffer[] = [];
          await readTopicRange(config, config.KAFKA_TOPIC_ENRICHED, (m) => {
            if (m.value) values.push(m.value);
          });
          await reader.prepare(values);
          return values.map((v) => plain(reader.decode(v)) as EnrichedEvent);
        },
        { until: (e) => e.length > 0, timeoutMs: 30000 },
      );
      assert.deepEqual(
        enriched.map((e) => [e.event_id, e.engagement_pct]),
        [['77', 10]],
      );
    } finally {
      await proc.stop();
      await input.close();
    }
  },
);
